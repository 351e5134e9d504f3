"""`shieldwall watch` adds what it reads to the hunt totals `/metrics` serves: a real watch
following a sensor's alert log, then a real `serve` scraped on 127.0.0.1 and parsed with
Prometheus's own text parser."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shieldwall.outputs.sensors.export import Exporter, Targets
from shieldwall.store import Provenance, Store
from tests.outputs.test_sensor_alerts import FLOW, INDICATORS, URL, eve_alert, rule_of
from tests.outputs.test_sensor_export import NOW
from tests.taxii.conftest import db_url, make_home, start_server


def _hunt_totals(server_url: str) -> dict[str, float]:
    text = httpx.get(server_url + "/metrics").text
    return {s.name: s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name.startswith("shieldwall_hunt_")}


def _wait_for(lines: queue.Queue[str], said: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if said in line:
            return line
    raise AssertionError(f"watch never said {said!r}")


def test_watch_feeds_the_hunt_metrics(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    store = Store.open(db_url(home))
    try:
        store.put_many(INDICATORS, Provenance("estonia"))
        Exporter(store, Targets(suricata=tmp_path / "suricata")).run(NOW)
    finally:
        store.close()
    url, flow = rule_of(tmp_path, URL), rule_of(tmp_path, FLOW)
    eve = tmp_path / "eve.json"
    eve.write_bytes((eve_alert(url) + b"\n") * 3)

    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shieldwall.cli.main", "watch", str(eve), "--from-start",
         "--interval", "0.2", "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    said: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            said.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        _wait_for(said, "sighting(s) recorded")  # the first read is in the totals at once
        with open(eve, "ab") as fh:  # read within the next seconds: added when it stops
            fh.write((eve_alert(flow) + b"\n") * 2)
        _wait_for(said, "2 hit(s)")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)

    server = start_server(home, "--no-federate")
    try:
        got = _hunt_totals(server.url)
    finally:
        server.stop()
    assert got["shieldwall_hunt_events_total"] == 5  # every line the watch read
    assert 0 < got["shieldwall_hunt_seconds_total"] < 60
