"""`kill -9` in the middle of merging a kit, then the same kit again: every object once,
every version once, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shieldwall.keys.signing import fingerprint, node_keys
from shieldwall.respond.kit import NodeRef, payload, seal, write_kit
from shieldwall.respond.model import Marking, next_version, note
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Query, Store
from tests.respond.kit_nodes import make_node, sw

N = 20_000


def test_sigkill_mid_merge_then_rerun_loses_and_doubles_nothing(tmp_path: Path) -> None:
    south = make_node(tmp_path / "south", "cert-south")
    assert sw(south, "member", "add", "cert-north").code == 0
    laptop = node_keys(tmp_path / "laptop", "cert-north")
    home = node_keys(south, "cert-south")
    case = new_id("incident")
    objs = [note(creator="cert-north", case_id=case, content=f"finding {i}",
                 marking=Marking(TLP.AMBER)) for i in range(N)]
    objs += [next_version(o, content=o["content"] + " (confirmed)") for o in objs[::10]]
    objs.append(laptop.card())
    to = NodeRef("cert-south", home.signing_public, home.kit_public)
    kit = tmp_path / "back.swk"
    write_kit(kit, seal(payload("return", case, laptop, to, objs), laptop, home.kit_public))

    cli = [sys.executable, "-m", "shieldwall.cli.main", "case", "checkin", str(kit),
           "--trust-signer", fingerprint(laptop.signing_public), "--home", str(south)]
    store = Store.open(f"sqlite:///{south / 'shieldwall.db'}")
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if store.count(Query(types=["note"], versions="all")) >= 2_000:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the merge finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after_kill = store.count(Query(types=["note"], versions="all"))
    assert 0 < after_kill < N + N // 10

    r = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert store.count(Query(types=["note"])) == N
    assert store.count(Query(types=["note"], versions="all")) == N + N // 10
    confirmed = [row for row in store.iter_query(Query(types=["note"]))
                 if row.obj()["content"].endswith("(confirmed)")]
    assert len(confirmed) == N // 10
    # Once more: all already held.
    r = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and " 0 new, 0 new versions" in r.stdout, r.stdout + r.stderr
    assert store.count(Query(types=["note"], versions="all")) == N + N // 10
    store.close()
