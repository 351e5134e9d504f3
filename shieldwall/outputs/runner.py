"""Running the outputs: route new objects into the outbox, deliver what is due.

Routing and each output's delivery are separate tasks, so a receiver that hangs holds up
its own alerts only, never another output's, routing, detection or federation (which
never wait on an output at all: they write the store; this process reads it). Each
delivery has a deadline (`timeout`); at most `concurrency` are in flight per output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shieldwall.outputs.alerts import Router
from shieldwall.outputs.config import OutputsConfig, TargetConfig
from shieldwall.outputs.errors import DeliveryError
from shieldwall.outputs.outbox import Backoff, Entry, Outbox

log = logging.getLogger("shieldwall.outputs")
# The longest a delivery loop sleeps with nothing due: a bound on noticing alerts that
# another runner put back (a lease that ran out).
IDLE_SECONDS = 5.0
PRUNE_SECONDS = 3_600.0  # how often delivered alerts older than `keep_days` are dropped


class Sender(Protocol):
    async def send(self, entry: Entry) -> None: ...  # raises DeliveryError

    async def close(self) -> None: ...


def make_sender(target: TargetConfig) -> Sender:
    """The sender for a target's type (raises `OutputError` when it cannot start)."""
    if target.type == "webhook":
        from shieldwall.outputs.webhook import WebhookSender

        return WebhookSender(target)
    if target.type == "syslog":
        from shieldwall.outputs.syslog import SyslogSender

        return SyslogSender(target)
    from shieldwall.outputs.bus import NatsSender

    return NatsSender(target)


@dataclass
class Tally:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Runner:
    def __init__(self, router: Router, targets: Sequence[TargetConfig],
                 senders: dict[str, Sender], config: OutputsConfig) -> None:
        self.router = router
        self.outbox: Outbox = router.outbox
        self.targets = [t for t in targets if t.enabled]
        self.senders = senders
        self.config = config
        self.backoff = Backoff(config.backoff_base, config.backoff_cap)

    async def deliver_due(self, target: TargetConfig) -> Tally:
        """Deliver every alert of `target` that is due now, batch by batch."""
        tally = Tally()
        sender = self.senders[target.name]
        limit = asyncio.Semaphore(target.concurrency)
        batch = max(50, target.concurrency * 8)
        while True:
            entries = await asyncio.to_thread(self.outbox.claim, target.name, limit=batch,
                                              lease=target.timeout * 3 + 30)
            if not entries:
                return tally

            async def one(entry: Entry) -> str | None:
                async with limit:
                    try:
                        await sender.send(entry)
                        return None
                    except DeliveryError as exc:
                        return str(exc) or type(exc).__name__

            results = await asyncio.gather(*(one(e) for e in entries))
            ok = [e.id for e, err in zip(entries, results, strict=True) if err is None]
            bad = [(e, err) for e, err in zip(entries, results, strict=True) if err is not None]
            await asyncio.to_thread(self.outbox.delivered, ok)
            await asyncio.to_thread(self.outbox.failed, bad, self.backoff)
            if ok and not bad and any(e.attempts for e in entries):
                # The receiver is back: what waits out its backoff is due now, instead
                # of trickling in over the longest delay (up to `backoff_cap`).
                await asyncio.to_thread(self.outbox.retry_now, target.name)
            tally.delivered += len(ok)
            tally.failed += len(bad)
            if bad:
                tally.errors.append(bad[0][1])
                log.warning("output %s: %d of %d alerts failed (%s); retried with backoff",
                            target.name, len(bad), len(entries), bad[0][1])
            if len(entries) < batch:
                return tally

    async def once(self) -> dict[str, Tally]:
        """Route, then deliver what is due on every output (`outputs run --once`)."""
        await asyncio.to_thread(self.router.route)
        tallies = await asyncio.gather(*(self.deliver_due(t) for t in self.targets))
        return {t.name: tally for t, tally in zip(self.targets, tallies, strict=True)}

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: route every `poll_seconds`, and deliver on each output apart,
        woken as soon as routing enqueued something, else when its next retry is due."""
        self._wake = {t.name: asyncio.Event() for t in self.targets}
        tasks = [asyncio.create_task(self._route_loop(stop))]
        tasks += [asyncio.create_task(self._deliver_loop(t)) for t in self.targets]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def _route_loop(self, stop: asyncio.Event) -> None:
        watch = self.router.store.seq_watch()
        seen, pruned = -1, 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - pruned > PRUNE_SECONDS:  # delivered, kept a while
                        keep = int((time.time() - self.config.keep_days * 86_400) * 1e6)
                        await asyncio.to_thread(self.outbox.prune, keep)
                        pruned = time.monotonic()
                    head = await asyncio.to_thread(watch.newest)
                    if head != seen:  # anything new since the last look?
                        if await asyncio.to_thread(self.router.route):
                            for event in self._wake.values():
                                event.set()
                        seen = head
                except Exception as exc:  # a database blip: say so, try again
                    log.error("outputs: routing failed: %s", exc)
                await _sleep(stop, self.config.poll_seconds)
        finally:
            watch.close()

    async def _deliver_loop(self, target: TargetConfig) -> None:
        """Until cancelled (`run`): deliver what is due, then sleep until the next alert
        is due or routing wakes it; only a read when nothing is due, never a write."""
        wake = self._wake[target.name]
        while True:
            wake.clear()
            wait = IDLE_SECONDS
            try:
                await self.deliver_due(target)
                due = await asyncio.to_thread(self.outbox.next_due, target.name)
                if due is not None:
                    wait = min(IDLE_SECONDS, max(0.0, due / 1e6 - time.time()))
            except Exception as exc:
                log.error("output %s: delivery failed: %s", target.name, exc)
            await _sleep(wake, wait)

    async def close(self) -> None:
        for sender in self.senders.values():
            try:
                await sender.close()
            except Exception as exc:  # closing a broken connection: nothing left to do
                log.debug("closing an output: %s", exc)


async def _sleep(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
