"""`shieldwall outputs run|status|test` and node start, as an operator runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from shieldwall.config import init_home
from shieldwall.store import Provenance, Store
from tests.outputs.helpers import SECRET, Receiver, own_indicator, sighting
from tests.taxii.conftest import SHIELDWALL


def sw(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHIELDWALL, *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=120, env=os.environ | {"COLUMNS": "300"} | env)


def test_a_bad_url_or_an_unknown_type_stops_outputs_and_the_node_in_one_line(
        tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "cert-a")
    cfg = home / "shieldwall.toml"
    base = cfg.read_text()
    for target, words in [
        ('type = "webhook"\nurl = "not a url"\nsecret_file = "s"', "bad url 'not a url'"),
        ('type = "kafak"\nurl = "nats://127.0.0.1:4222"', "unknown type 'kafak'"),
        ('type = "syslog"\nurl = "udp://127.0.0.1"', "bad url 'udp://127.0.0.1'"),
    ]:
        cfg.write_text(base + f'\n[[outputs.targets]]\nname = "soc"\n{target}\n')
        for args in (["outputs", "run"], ["serve", "--port", "0"]):
            r = sw(home, *args)
            assert r.returncode == 2, r.stdout + r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "outputs.targets.0: output 'soc': " + words in lines[0]


def test_run_once_status_and_test_with_json_logs(tmp_path: Path) -> None:
    home = tmp_path / "node"
    (tmp_path / "secret").write_bytes(SECRET)
    rec = Receiver().start()
    port = rec.port
    rec.stop()  # down at first
    init_home(home, "cert-a", outputs={"targets": [
        {"name": "siem", "type": "webhook", "url": f"http://127.0.0.1:{port}/hook",
         "secret_file": str(tmp_path / "secret"), "timeout": 2}]})
    assert sw(home, "outputs", "run", "--once").returncode == 0  # starts the cursor
    store = Store.open(f"sqlite:///{home / 'shieldwall.db'}")
    try:
        store.put(sighting("cert-a", own_indicator(store, "cert-a")), Provenance("cert-a"))
    finally:
        store.close()
    r = sw(home, "outputs", "run", "--once", SHIELDWALL_OBSERVE__JSON_LOGS="true")
    assert r.returncode == 0 and "siem: 0 alerts delivered, 1 failed" in r.stdout, r.stderr
    (log,) = [orjson.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert log["level"] == "warning" and log["logger"] == "shieldwall.outputs"
    assert "retried with backoff" in log["message"]
    r = sw(home, "outputs", "status")
    assert "siem: 1 waiting, 0 delivered" in r.stdout and "last error: Connect" in r.stdout
    r = sw(home, "outputs", "test", "siem")
    assert r.returncode == 2 and "the test alert failed" in r.stderr

    rec = Receiver(port).start()
    try:
        r = sw(home, "outputs", "test", "siem")
        assert r.returncode == 0 and "test alert delivered" in r.stdout, r.stderr
        kinds = [orjson.loads(b)["kind"] for _, b in rec.requests]
        assert "test" in kinds
    finally:
        rec.stop()
