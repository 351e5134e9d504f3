"""NATS JetStream alerts against the NATS server on 127.0.0.1:4222: published with
`Nats-Msg-Id`, consumed back, a retried publish stored once."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from shieldwall.outputs.bus import NatsSender
from shieldwall.outputs.config import TargetConfig
from shieldwall.outputs.errors import DeliveryError
from shieldwall.outputs.outbox import Outbox
from shieldwall.store import Provenance, Store
from tests.outputs.helpers import audience, own_indicator, runner_for, sighting

NATS = "nats://127.0.0.1:4222"


def _nats_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _nats_up(), reason="no NATS server on 127.0.0.1:4222 "
                                "(CI runs one: nats-server -js)")


async def _stream(name: str, subject: str, *, delete: bool = False) -> None:
    import nats

    nc = await nats.connect(NATS)
    try:
        js = nc.jetstream()
        if delete:
            await js.delete_stream(name)
        else:
            await js.add_stream(name=name, subjects=[subject])
    finally:
        await nc.close()


async def _consume(name: str, subject: str, n: int) -> list:
    import nats

    nc = await nats.connect(NATS)
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        sub = await js.pull_subscribe(subject, durable=f"c{uuid.uuid4().hex[:8]}", stream=name)
        msgs = await sub.fetch(n, timeout=10) if n else []
        for m in msgs:
            await m.ack()
        return [info.state.messages, msgs]
    finally:
        await nc.close()


def test_alerts_are_published_once_per_key_and_consumed_back(sqlite_store: Store) -> None:
    tag = uuid.uuid4().hex[:12]
    stream, subject = f"SW_TEST_{tag}", f"shieldwall.test.{tag}"
    asyncio.run(_stream(stream, subject))
    try:
        target = TargetConfig(name="bus", type="nats", url=NATS, subject=subject, timeout=5)
        runner = runner_for(sqlite_store, [(target, audience("bus", "cert-a"))],
                            backoff_base=0.01, backoff_cap=0.02)
        ind = own_indicator(sqlite_store, "cert-a")
        sightings = [sighting("cert-a", ind) for _ in range(4)]
        sqlite_store.put_many(sightings, Provenance("cert-a"))

        async def twice() -> tuple[int, int]:
            try:
                first = (await runner.once())["bus"].delivered
                # A retry of all four (as after a lost acknowledgement): JetStream keeps
                # one each, by Nats-Msg-Id.
                with sqlite_store.transaction() as conn:
                    conn.execute(text("UPDATE alert_outbox SET delivered_us = NULL, "
                                      "next_us = 0"))
                return first, (await runner.once())["bus"].delivered
            finally:
                await runner.close()

        assert asyncio.run(twice()) == (4, 4)
        count, msgs = asyncio.run(_consume(stream, subject, 4))
        assert count == 4
        bodies = [orjson.loads(m.data) for m in msgs]
        assert {b["object"]["id"] for b in bodies} == {s["id"] for s in sightings}
        assert all(m.headers["Nats-Msg-Id"] == b["key"] for m, b in zip(msgs, bodies,
                                                                        strict=True))
        assert {k for k, _ in Outbox(sqlite_store).keys("bus")} == {b["key"] for b in bodies}
    finally:
        asyncio.run(_stream(stream, subject, delete=True))


def test_a_subject_no_stream_captures_is_a_failure_to_retry(tmp_path: Path) -> None:
    from shieldwall.outputs.outbox import Entry

    sender = NatsSender(TargetConfig(name="bus", type="nats", url=NATS, timeout=2,
                                     subject=f"shieldwall.nowhere.{uuid.uuid4().hex}"))

    async def go() -> None:
        try:
            await sender.send(Entry(1, "bus", "k", "sighting", "{}", 0, 0))
        finally:
            await sender.close()

    with pytest.raises(DeliveryError):
        asyncio.run(go())
