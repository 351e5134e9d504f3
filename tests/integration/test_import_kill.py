"""Kill -9 during a large import loses at most the uncommitted batch; a re-run completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from shieldwall.store import Query, Store
from tests.factories import indicator, sid

N = 60_000


def test_sigkill_mid_import_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    home = tmp_path / "node"
    env = dict(os.environ, SHIELDWALL_HOME=str(home))
    cli = [sys.executable, "-m", "shieldwall.cli.main"]
    subprocess.run([*cli, "init", "--member", "estonia"], env=env, check=True,
                   capture_output=True)
    objs = [indicator(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(N)]
    bundle = tmp_path / "big.json"
    bundle.write_bytes(orjson.dumps({"type": "bundle", "id": sid("bundle", "3"),
                                     "objects": objs}))
    store = Store.open(f"sqlite:///{home / 'shieldwall.db'}")
    proc = subprocess.Popen([*cli, "import", "--no-warninglists", str(bundle)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        committed = store.count(Query(types=["indicator"]))
        if committed >= 5_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after_kill = store.count(Query(types=["indicator"]))
    assert 0 < after_kill < N
    assert after_kill % 5_000 == 0  # whole batches only: nothing half-written
    r = subprocess.run([*cli, "import", "--no-warninglists", str(bundle)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert store.count(Query(types=["indicator"], versions="all")) == N
    assert store.count(Query(types=["indicator"])) == N
    store.close()
