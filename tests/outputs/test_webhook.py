"""Webhooks against a real HTTP receiver on 127.0.0.1: signed, retried, never twice."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from shieldwall.outputs.outbox import Outbox
from shieldwall.outputs.webhook import sign, verify
from shieldwall.store import Provenance, Store
from tests.outputs.helpers import (
    SECRET,
    Receiver,
    audience,
    close,
    once,
    own_indicator,
    runner_for,
    sighting,
    webhook_target,
)


@pytest.fixture
def receiver() -> Receiver:
    rec = Receiver().start()
    yield rec
    rec.stop()


def test_an_alert_arrives_signed_over_its_exact_body(sqlite_store: Store, tmp_path: Path,
                                                      receiver: Receiver) -> None:
    ind = own_indicator(sqlite_store, "cert-a")
    target = webhook_target("siem", receiver.url, tmp_path / "secret")
    runner = runner_for(sqlite_store, [(target, audience("siem", "cert-a"))])
    s = sighting("cert-a", ind)
    sqlite_store.put(s, Provenance("cert-a"))
    assert once(runner)["siem"].delivered == 1
    close(runner)
    ((headers, body),) = receiver.requests
    alert = orjson.loads(body)
    assert alert["kind"] == "sighting" and alert["object"]["id"] == s["id"]
    assert alert["related"][0]["id"] == ind and alert["audience"] == "cert-a"
    assert headers["idempotency-key"] == alert["key"]
    assert verify(SECRET, headers["x-shieldwall-signature"], body)
    assert not verify(SECRET, headers["x-shieldwall-signature"], body + b" ")
    assert not verify(b"another secret of 32 bytes......", headers["x-shieldwall-signature"],
                      body)


def test_a_replayed_signature_is_refused_after_the_tolerance() -> None:
    body = b'{"kind":"sighting"}'
    old = sign(SECRET, body, int(time.time()) - 3_600)
    assert not verify(SECRET, old, body)
    assert verify(SECRET, old, body, now=time.time() - 3_600)
    assert not verify(SECRET, "t=notanumber,v1=00", body)


def test_receiver_down_then_up_gets_every_alert_once_even_across_a_restart(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    store = Store.open(url)
    rec = Receiver().start()
    port = rec.port
    rec.stop()  # down before anything is sent
    ind = own_indicator(store, "cert-a")
    target = webhook_target("siem", f"http://127.0.0.1:{port}/hook", tmp_path / "secret",
                            timeout=2.0)
    runner = runner_for(store, [(target, audience("siem", "cert-a"))], backoff_base=0.01,
                        backoff_cap=0.02)
    store.put_many([sighting("cert-a", ind) for _ in range(30)], Provenance("cert-a"))
    tally = once(runner)["siem"]
    close(runner)
    assert (tally.delivered, tally.failed) == (0, 30)
    assert "Connect" in tally.errors[0]
    store.close()

    # The node restarts; the receiver comes back on the same port.
    store = Store.open(url)
    rec = Receiver(port).start()
    try:
        runner = runner_for(store, [(target, audience("siem", "cert-a"))],
                            backoff_base=0.01, backoff_cap=0.02)
        time.sleep(0.05)  # past the shortened backoff
        assert once(runner)["siem"].delivered == 30
        assert once(runner)["siem"].delivered == 0  # nothing left, nothing again
        close(runner)
        keys = rec.delivered_keys()
        assert len(keys) == 30 and len(set(keys)) == 30
        assert set(keys) == {k for k, _ in Outbox(store).keys("siem")}
        assert Outbox(store).depth() == {}
    finally:
        rec.stop()
        store.close()


@pytest.mark.parametrize("mode", ["500", "garbage", "hang"])
def test_a_failing_receiver_is_retried_and_holds_back_no_other_output(
        sqlite_store: Store, tmp_path: Path, receiver: Receiver, mode: str) -> None:
    bad = Receiver().start()
    bad.mode = mode
    try:
        ind = own_indicator(sqlite_store, "cert-a")
        failing = webhook_target("failing", bad.url, tmp_path / "s1", timeout=0.5)
        working = webhook_target("working", receiver.url, tmp_path / "s2")
        runner = runner_for(sqlite_store, [(failing, audience("failing", "cert-a")),
                                           (working, audience("working", "cert-a"))],
                            backoff_base=0.01, backoff_cap=0.02)
        sqlite_store.put(sighting("cert-a", ind), Provenance("cert-a"))
        tallies = once(runner)
        assert tallies["working"].delivered == 1
        assert (tallies["failing"].delivered, tallies["failing"].failed) == (0, 1)
        assert Outbox(sqlite_store).depth() == {"failing": 1}
        bad.mode = "ok"
        bad.release.set()
        time.sleep(0.05)
        assert once(runner)["failing"].delivered == 1
        close(runner)
        keys = bad.delivered_keys()
        assert len(set(keys)) == 1 and len(keys) == 2  # the same alert, retried
    finally:
        bad.stop()


def test_a_missing_secret_stops_the_output_at_start(tmp_path: Path) -> None:
    from shieldwall.outputs.config import TargetConfig
    from shieldwall.outputs.errors import OutputError
    from shieldwall.outputs.webhook import WebhookSender

    target = TargetConfig(name="siem", type="webhook", url="https://siem.example/h",
                          secret_file=str(tmp_path / "absent"))
    with pytest.raises(OutputError, match="cannot read secret_file"):
        WebhookSender(target)


def test_the_running_outputs_deliver_as_sightings_arrive_and_catch_up_after_an_outage(
        sqlite_store: Store, tmp_path: Path) -> None:
    import asyncio
    import threading

    from tests.outputs.helpers import wait_for

    rec = Receiver().start()
    port = rec.port
    ind = own_indicator(sqlite_store, "cert-a")
    target = webhook_target("siem", rec.url, tmp_path / "secret", timeout=2.0)
    runner = runner_for(sqlite_store, [(target, audience("siem", "cert-a"))],
                        poll_seconds=0.05, backoff_base=0.05, backoff_cap=0.2)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(runner.run(stop)))
    thread.start()
    try:
        sqlite_store.put(sighting("cert-a", ind), Provenance("cert-a"))
        assert wait_for(lambda: len(rec.requests) == 1)
        rec.stop()
        sqlite_store.put_many([sighting("cert-a", ind) for _ in range(5)], Provenance("cert-a"))
        assert wait_for(lambda: any(
            s.last_error for s in Outbox(sqlite_store).status()))  # failing while down
        rec = Receiver(port).start()
        assert wait_for(lambda: Outbox(sqlite_store).depth() == {})
        assert len(rec.requests) == 5 and len(set(rec.delivered_keys())) == 5
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
        rec.stop()
