"""Alerts published to a message bus: NATS JetStream.

Each alert is published on the target's `subject` with `Nats-Msg-Id` set to its
idempotency key: JetStream drops a second publish of the same id within the stream's
duplicate window (2 minutes by default), so a retry after a lost acknowledgement is not
stored twice. Delivered means JetStream acknowledged it (it is in a stream); a subject
no stream captures gets no acknowledgement and is retried, as a down server is.

The stream itself (its subjects, retention, replicas) is the SOC's to create:
`nats stream add shieldwall --subjects 'shieldwall.alerts'`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shieldwall.outputs.config import TargetConfig
from shieldwall.outputs.errors import DeliveryError
from shieldwall.outputs.outbox import Entry
from shieldwall.outputs.webhook import tls_context

MSG_ID = "Nats-Msg-Id"


class NatsSender:
    def __init__(self, target: TargetConfig) -> None:
        self.target = target
        self.tls = tls_context(target) if target.url.startswith("tls:") or target.tls_ca \
            else None
        self.nc: Any = None
        self.js: Any = None

    async def _connect(self) -> Any:
        import nats

        if self.nc is None or self.nc.is_closed:
            self.nc = await nats.connect(
                servers=[self.target.url], tls=self.tls, connect_timeout=self.target.timeout,
                allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=1)
            self.js = self.nc.jetstream(timeout=self.target.timeout)
        return self.js

    async def send(self, entry: Entry) -> None:
        from nats.errors import Error as NatsError

        try:
            js = await asyncio.wait_for(self._connect(), self.target.timeout)
            await asyncio.wait_for(
                js.publish(self.target.subject, entry.body.encode(),
                           headers={MSG_ID: entry.key, "Shieldwall-Kind": entry.kind}),
                self.target.timeout)
        except (NatsError, OSError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()
        self.nc = None
