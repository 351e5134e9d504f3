"""A large bundle is streamed: the import's worker does not hold the file's objects.

Two imports in child processes, of 15,000 and of 60,000 indicators (about 7 and 28 MB),
each reporting its worker's peak RSS. A worker that parsed the whole file would grow by
roughly 2 KB of Python objects per indicator (~90 MB between the two); a streaming one
holds a few batches whatever the file's size. The writer's RSS is not compared: its
SQLite page cache legitimately grows with the database up to its fixed 64 MB bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from tests.factories import indicator

_CHILD = r"""
import json, resource, sys
from pathlib import Path
from shieldwall.ingest.runner import import_file
from shieldwall.node import member_identity
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
store = Store.open(sys.argv[2])
r = import_file(store, Path(sys.argv[1]), source="t", producer=member_identity("t"),
                default_tlp=TLP.AMBER, parallel=True)
store.close()
print(json.dumps({"stored": r.stored,
                  "worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _bundle(path: Path, n: int) -> None:
    with path.open("wb") as fh:
        fh.write(b'{"type": "bundle", "id": "bundle--' + str(uuid.uuid4()).encode()
                 + b'", "objects": [')
        fh.write(b",".join(orjson.dumps(indicator(f"10.{i >> 16}.{i >> 8 & 255}.{i & 255}"))
                           for i in range(n)))
        fh.write(b"]}")


def _import(tmp: Path, n: int) -> tuple[int, int, int]:
    bundle = tmp / f"b{n}.json"
    _bundle(bundle, n)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(bundle), f"sqlite:///{tmp / f'n{n}.db'}"],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["stored"], r["worker_kb"], bundle.stat().st_size


def test_worker_memory_does_not_grow_with_the_bundle(tmp_path: Path) -> None:
    small_stored, small_kb, small_bytes = _import(tmp_path, 15_000)
    big_stored, big_kb, big_bytes = _import(tmp_path, 60_000)
    assert (small_stored, big_stored) == (15_000, 60_000)
    growth = (big_kb - small_kb) * 1024
    # 4x the objects and ~21 MB more file; the worker may grow by a small fraction of it.
    assert growth < (big_bytes - small_bytes) * 0.4, (small_kb, big_kb)
