"""The outbox: alerts routed once per output, kept until delivered, retried with backoff."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from shieldwall.outputs.alerts import CURSOR_KEY, Router
from shieldwall.outputs.outbox import Backoff, Outbox, Pending
from shieldwall.store import Provenance, Store
from shieldwall.store.migrate import current, script_head
from tests.outputs.helpers import audience, own_indicator, sighting


def test_migrated_to_the_outbox(store: Store) -> None:
    assert current(store.engine) == script_head()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alert_outbox")).scalar() == 0


def test_a_new_output_starts_at_the_head_and_routes_each_alert_once(store: Store) -> None:
    ind = own_indicator(store, "cert-a")
    store.put(sighting("cert-a", ind), Provenance("cert-a"))  # before the output existed
    router = Router(store, [audience("soc", "cert-a")], node_member="cert-a")
    assert router.route() == 0  # history is not alerted
    assert store.kv_get(CURSOR_KEY + "soc") == str(store.newest_seq())
    before = store.newest_seq()
    s1, s2 = sighting("cert-a", ind), sighting("cert-a", ind)
    store.put_many([s1, s2], Provenance("cert-a"))
    assert router.route() == 2
    assert router.route() == 0  # routing again adds nothing
    # A new version of a sighting (watch adding hits) is the same alert.
    store.put({**s1, "modified": "2024-05-02T00:00:00.000Z", "count": 5}, Provenance("cert-a"))
    assert router.route() == 0
    keys = Outbox(store).keys("soc")
    assert len(keys) == 2 and len({k for k, _ in keys}) == 2
    # The cursor reset to before the sightings: the same keys again, nothing new.
    store.kv_set(CURSOR_KEY + "soc", str(before))
    assert router.route() == 0
    assert len(Outbox(store).keys("soc")) == 2


def test_each_output_has_its_own_rows(store: Store) -> None:
    ind = own_indicator(store, "cert-a")
    router = Router(store, [audience("siem", "cert-a"), audience("bus", "cert-a")],
                    node_member="cert-a")
    router.route()
    store.put(sighting("cert-a", ind), Provenance("cert-a"))
    assert router.route() == 2
    (k1, _), = Outbox(store).keys("siem")
    (k2, _), = Outbox(store).keys("bus")
    assert k1 != k2  # an idempotency key per alert per output


def test_failed_alerts_wait_their_backoff_and_delivered_ones_are_not_taken_again(
        store: Store) -> None:
    box = Outbox(store)
    box.add([Pending("soc", f"k{i}", "sighting", "{}") for i in range(5)])
    box.add([Pending("soc", "k0", "sighting", "{}")])  # the same key: not added twice
    taken = box.claim("soc", limit=10)
    assert [e.key for e in taken] == [f"k{i}" for i in range(5)]
    assert box.claim("soc") == []  # leased
    box.delivered([taken[0].id, taken[1].id])
    box.failed([(e, "HTTP 500") for e in taken[2:]], Backoff(base=600, cap=600))
    assert box.claim("soc") == []  # waiting out their backoff
    assert box.depth() == {"soc": 3}
    (st,) = box.status()
    assert (st.pending, st.delivered, st.last_error) == (3, 2, "HTTP 500")
    assert box.retry_now("soc") == 3
    again = box.claim("soc")
    assert sorted(e.key for e in again) == ["k2", "k3", "k4"]
    assert all(e.attempts == 1 for e in again)


def test_backoff_grows_with_jitter_and_stops_at_its_cap() -> None:
    b = Backoff(base=1.0, cap=60.0)
    for attempts, high in [(0, 1), (1, 2), (3, 8), (10, 60), (40, 60)]:
        d = b.delay(attempts)
        assert high / 2 <= d <= high


def test_undelivered_alerts_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    first = Store.open(url)
    Outbox(first).add([Pending("soc", "k1", "sighting", '{"a": 1}')])
    first.close()
    second = Store.open(url)
    (entry,) = Outbox(second).claim("soc")
    assert (entry.key, entry.body) == ("k1", '{"a": 1}')
    second.close()


def test_runner_once_with_no_alerts_delivers_nothing(sqlite_store: Store, tmp_path: Path
                                                     ) -> None:
    from tests.outputs.helpers import runner_for, webhook_target

    target = webhook_target("soc", "http://127.0.0.1:9/hook", tmp_path / "s")
    runner = runner_for(sqlite_store, [(target, audience("soc", "cert-a"))])
    tallies = asyncio.run(runner.once())
    asyncio.run(runner.close())
    assert tallies["soc"].delivered == tallies["soc"].failed == 0
    assert sqlite_store.kv_get(CURSOR_KEY + "soc") is not None


def test_prune_forgets_only_delivered_alerts(store: Store) -> None:
    from shieldwall.stix.timestamps import now_us

    box = Outbox(store)
    box.add([Pending("soc", f"k{i}", "sighting", "{}") for i in range(3)])
    taken = box.claim("soc")
    box.delivered([taken[0].id])
    assert box.prune(now_us() - 3_600_000_000) == 0  # delivered just now: kept
    assert box.prune(now_us() + 1) == 1
    assert [k for k, _ in box.keys("soc")] == ["k1", "k2"]
