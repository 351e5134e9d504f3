"""`/metrics` of a real `shieldwall serve` on 127.0.0.1, parsed with Prometheus's own
text parser; who may scrape it."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shieldwall.federation.peers import PeerState, save_state
from shieldwall.observe.counters import record_hunt
from shieldwall.observe.metrics import allowed
from shieldwall.outputs.outbox import Outbox, Pending
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from tests.factories import indicator
from tests.outputs.helpers import sighting
from tests.taxii.conftest import add_members, db_url, make_home, start_server


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _seed(home: Path) -> None:
    store = Store.open(db_url(home))
    try:
        store.put_many([indicator(f"198.51.100.{i}", tlp=TLP.GREEN) for i in range(3)]
                       + [indicator("203.0.113.9", tlp=TLP.RED)], Provenance("feed"))
        ind = indicator("192.0.2.1", tlp=TLP.AMBER)
        store.put(ind, Provenance("home-node", "detect"))
        store.put(sighting("home-node", ind["id"]), Provenance("home-node", "detect"))
        store.put(sighting("cert-b", ind["id"], tlp=TLP.GREEN), Provenance("cert-b", "taxii"))
        store.put({**indicator("x"), "type": "x-acme-secretproject",
                   "id": "x-acme-secretproject--6ba7b810-9dad-41d1-80b4-00c04fd430c8"},
                  Provenance("feed"))
        Outbox(store).add([Pending("siem", f"k{i}", "sighting", "{}") for i in range(2)])
        save_state(store, "cert-b", PeerState(last_attempt_us=2, last_success_us=1,
                                              last_error_us=2, refused=4, rejected=7))
        record_hunt(store, 1_000, 2.0)
        record_hunt(store, 500, 1.0)
    finally:
        store.close()


def test_metrics_parse_and_count_what_the_node_holds(tmp_path: Path) -> None:
    home = make_home(tmp_path, peers=[{"name": "cert-b", "url": "http://127.0.0.1:9/"}])
    tokens = add_members(home, {"cert-b": "ally"})
    _seed(home)
    server = start_server(home, "--no-federate")
    try:
        bad = httpx.get(server.api(), headers={"Authorization": "Bearer swt_wrong",
                                               "Accept": "application/taxii+json;version=2.1"})
        assert bad.status_code == 401
        r = httpx.get(server.url + "/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        got = _samples(r.text)
        # A member's TAXII token opens the API, not the metrics; loopback needs none.
        assert httpx.get(server.api(), headers={
            "Authorization": f"Bearer {tokens['cert-b']}",
            "Accept": "application/taxii+json;version=2.1"}).status_code == 200
    finally:
        server.stop()
    assert got[("shieldwall_objects", (("tlp", "green"), ("type", "indicator")))] == 3
    assert got[("shieldwall_objects", (("tlp", "red"), ("type", "indicator")))] == 1
    assert got[("shieldwall_objects", (("tlp", "amber"), ("type", "sighting")))] == 1
    assert got[("shieldwall_objects", (("tlp", "green"), ("type", "other")))] == 1
    assert "secretproject" not in r.text  # no object content in a label
    assert got[("shieldwall_stored_versions_total", (("channel", "import"),))] == 5
    assert got[("shieldwall_sightings", (("by", "this-member"),))] == 1
    assert got[("shieldwall_sightings", (("by", "others"),))] == 1
    assert got[("shieldwall_hunt_events_total", ())] == 1_500
    assert got[("shieldwall_hunt_seconds_total", ())] == 3.0
    assert got[("shieldwall_peer_sync_failing", (("peer", "cert-b"),))] == 1
    assert got[("shieldwall_peer_refused_total", (("peer", "cert-b"),))] == 4
    assert got[("shieldwall_refused_arrivals_total", (("peer", "cert-b"),))] == 7
    assert got[("shieldwall_peer_sync_lag_seconds", (("peer", "cert-b"),))] > 1e9
    assert got[("shieldwall_outbox_depth", (("output", "siem"),))] == 2
    assert got[("shieldwall_failed_logins_total", ())] == 1


def test_off_loopback_only_the_metrics_token_opens_it(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text("m" * 32 + "\n")
    home = make_home(tmp_path, observe={"metrics_token_file": str(token_file),
                                        "metrics_loopback": False})
    tokens = add_members(home, {"cert-b": "ally"})
    server = start_server(home, "--no-federate")
    try:
        assert httpx.get(server.url + "/metrics").status_code == 403
        member = httpx.get(server.url + "/metrics",
                           headers={"Authorization": f"Bearer {tokens['cert-b']}"})
        assert member.status_code == 403 and "shieldwall_objects" not in member.text
        ok = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert ok.status_code == 200
        assert any(f.name == "shieldwall_objects"
                   for f in text_string_to_metric_families(ok.text))
    finally:
        server.stop()


def test_who_may_scrape() -> None:
    token = "t" * 32
    assert allowed("127.0.0.1", None, token=None, loopback=True)
    assert allowed("::1", None, token=None, loopback=True)
    assert not allowed("127.0.0.1", None, token=token, loopback=False)
    assert not allowed("192.0.2.5", None, token=None, loopback=True)
    assert not allowed("192.0.2.5", "Bearer " + "x" * 32, token=token, loopback=True)
    assert allowed("192.0.2.5", "Bearer " + token, token=token, loopback=False)
    assert not allowed("192.0.2.5", "Basic " + token, token=token, loopback=False)
    assert not allowed("192.0.2.5", "Bearer ", token=None, loopback=False)


def test_a_hunt_adds_its_events_to_the_totals(tmp_path: Path) -> None:
    import os
    import re
    import subprocess

    from shieldwall.observe.counters import hunt_totals
    from tests.taxii.conftest import SHIELDWALL

    home = make_home(tmp_path)
    log = Path(__file__).resolve().parents[1] / "data" / "zeek" / "conn.log"
    counts = []
    for _ in range(2):
        r = subprocess.run([SHIELDWALL, "hunt", str(log), "--home", str(home)],
                           capture_output=True, text=True, timeout=120,
                           env=os.environ | {"COLUMNS": "200"})
        assert r.returncode in (0, 1), r.stderr
        counts.append(int(re.search(r"([\d,]+) events? from", r.stderr + r.stdout)
                          .group(1).replace(",", "")))
    store = Store.open(db_url(home))
    try:
        events, seconds = hunt_totals(store)
    finally:
        store.close()
    assert counts[0] > 0 and events == sum(counts) and seconds > 0
