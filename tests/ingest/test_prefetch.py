"""An import whose worker starts before the node is open (`runner.prefetch`) stores exactly
what an import in one process stores, and a command that fails before reading its batches
leaves no worker behind."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from shieldwall.ingest import warninglists as wl
from shieldwall.ingest.runner import import_file, prefetch
from shieldwall.stix.identity import member_identity
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
from tests.factories import indicator
from tests.imports import packages_loaded

PRODUCER = member_identity("estonia")
CLI = str(Path(sys.executable).parent / "shieldwall")


def _bundle(path: Path) -> tuple[Path, str, str]:
    """A bundle over the worker's size threshold: a custom TLP:RED definition at its very
    end marks one indicator at its head; another indicator carries a stored override."""
    red = {"type": "marking-definition", "spec_version": "2.1",
           "id": f"marking-definition--{uuid.uuid4()}", "created": "2024-01-01T00:00:00.000Z",
           "name": "TLP:RED", "definition_type": "statement",
           "definition": {"statement": "ours"}}
    head = indicator("10.200.0.1", object_marking_refs=[red["id"]])
    filler = [indicator(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                        description="x" * 200) for i in range(9_000)]
    benign = indicator("8.8.8.8")
    objs: list[dict[str, Any]] = [head, *filler, benign, red]
    path.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                   "objects": objs}))
    assert path.stat().st_size > 2 * 1024 * 1024
    return path, head["id"], benign["id"]


def _stored(store: Store) -> dict[str, TLP]:
    rows = store.engine.connect().exec_driver_sql(
        "SELECT id, tlp FROM objects WHERE is_latest").all()
    return {r[0]: TLP(r[1]) for r in rows}


def test_a_prefetched_import_stores_what_an_import_in_one_process_stores(
        tmp_path: Path) -> None:
    path, head, benign = _bundle(tmp_path / "big.json")
    results = []
    for how in ("one process", "prefetched"):
        store = Store.open(f"sqlite:///{tmp_path / f'{how}.db'}")
        early = prefetch(path, fmt=None, tlp=None, strict=False, warninglists=True) \
            if how == "prefetched" else None
        assert (early is not None) == (how == "prefetched")
        try:
            report = import_file(store, path, source="estonia", producer=PRODUCER,
                                 default_tlp=TLP.AMBER, flagger=wl.check_indicator,
                                 parallel=False, prefetched=early)
        finally:
            if early is not None:
                early.close()
        stored = _stored(store)
        results.append((stored, report.new, len(report.rejected),
                        sorted((oid, name) for oid, _, name in report.warninglisted)))
        assert stored[head] is TLP.RED  # the definition at the end counted for the head
        store.close()
    assert results[0] == results[1]
    assert results[0][1] == 9_003
    # The writer checks every other indicator: the benign one is found wherever it falls.
    assert benign in {oid for oid, _ in results[1][3]}


def test_a_small_file_or_a_directory_is_not_prefetched(tmp_path: Path) -> None:
    small = tmp_path / "small.json"
    small.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                    "objects": [indicator("10.0.0.1")]}))
    assert prefetch(small, fmt=None, tlp=None, strict=False, warninglists=False) is None
    assert prefetch(tmp_path, fmt=None, tlp=None, strict=False, warninglists=False) is None


def test_a_command_that_fails_before_reading_leaves_no_worker(tmp_path: Path) -> None:
    """The worker started, the node home does not exist: one line, exit 2, and the
    command's output closes at once (a worker left behind would hold it open)."""
    path, _, _ = _bundle(tmp_path / "big.json")
    done = subprocess.run([CLI, "import", "--home", str(tmp_path / "nowhere"), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("shieldwall: error:")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_prefetched_file_cut_before_its_first_batch_is_reported(tmp_path: Path) -> None:
    """The worker fails before the node's settings reach it (its pipe closed): the
    command still says why, in one line, exit 2."""
    path, _, _ = _bundle(tmp_path / "big.json")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # cut mid-bundle, before 5,000 objects
    home = tmp_path / "node"
    subprocess.run([CLI, "init", "--home", str(home), "--member", "estonia"], check=True,
                   capture_output=True, timeout=60)
    done = subprocess.run([CLI, "import", "--home", str(home), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.strip().startswith("shieldwall: error: ")
    assert "malformed JSON: parse error: premature EOF" in done.stderr
    assert "big.json" in done.stderr


def test_the_worker_starts_before_the_database_layer_is_imported() -> None:
    """`prefetch` forks the worker before the command opens the node; what the fork needs
    (the import runner, and what the worker reads, validates and prepares with) must not
    import SQLAlchemy, or every large import waits for it first (a status constant imported
    from the schema once cost ~0.3 s before the fork)."""
    code = ("import shieldwall.cli.main, shieldwall.ingest.runner, "
            "shieldwall.ingest.stix_bundle, shieldwall.ingest.warninglists")
    assert packages_loaded(code, {"sqlalchemy", "pydantic", "fastapi", "alembic"}) == set()
