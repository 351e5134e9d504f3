"""The durable outbox: alerts wait in the store until their output has taken them.

Routing (`outputs.alerts`) writes an alert here in the same transaction that moves its
cursor, so an alert is enqueued once whatever crashes when; delivery takes rows out
(`claim`), and marks them delivered or failed. A failed row waits with exponential
backoff and jitter, each row on its own clock: a receiver that is down holds back
nothing but its own alerts, and a restart finds every undelivered row where it was.

Delivery is at least once: a process killed between a receiver's answer and
`delivered` sends that alert again. Every alert carries its idempotency key (unique
per output), which the receiver uses to drop the repeat.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    select,
    update,
)

from shieldwall.stix.timestamps import now_us
from shieldwall.store import Store

metadata = MetaData()
SeqType = BigInteger().with_variant(Integer(), "sqlite")

# Created by migration 0013.
alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("output", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("next_us", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("delivered_us", BigInteger),
    UniqueConstraint("output", "key", name="uq_alert_outbox_output_key"),
    sqlite_autoincrement=True,
)
Index("ix_alert_outbox_due", alert_outbox.c.output, alert_outbox.c.delivered_us,
      alert_outbox.c.next_us)

_MAX_ERROR = 500  # characters of a receiver's error kept per row


@dataclass(frozen=True)
class Pending:
    """An alert for one output, before it is enqueued."""

    output: str
    key: str
    kind: str
    body: str  # the JSON the output sends (or formats)


@dataclass(frozen=True)
class Entry:
    """An enqueued alert, as delivery sees it."""

    id: int
    output: str
    key: str
    kind: str
    body: str
    attempts: int
    created_us: int


@dataclass(frozen=True)
class Backoff:
    """Seconds before the next attempt: base * 2^attempts, capped, times a jitter in
    [0.5, 1] so that alerts failed together do not all come back in the same instant."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempts: int) -> float:
        return min(self.cap, self.base * 2 ** min(attempts, 30)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class OutputStatus:
    output: str
    pending: int
    delivered: int
    oldest_pending_us: int | None
    last_error: str | None


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def enqueue(self, conn: Connection, items: Iterable[Pending]) -> int:
        """Add alerts inside the caller's write transaction (`Store.transaction`); an
        (output, key) already held is skipped. Returns how many were added."""
        t = alert_outbox
        now = now_us()
        added = 0
        by_output: dict[str, dict[str, Pending]] = {}
        for p in items:
            by_output.setdefault(p.output, {}).setdefault(p.key, p)
        for output, wanted in by_output.items():
            keys = sorted(wanted)
            held: set[str] = set()
            for i in range(0, len(keys), 500):
                held.update(conn.execute(select(t.c.key).where(
                    t.c.output == output, t.c.key.in_(keys[i:i + 500]))).scalars())
            rows = [{"output": output, "key": k, "kind": p.kind, "body": p.body,
                     "created_us": now, "next_us": now, "attempts": 0}
                    for k, p in wanted.items() if k not in held]
            if rows:
                conn.execute(t.insert(), rows)
                added += len(rows)
        return added

    def add(self, items: Iterable[Pending]) -> int:
        """`enqueue` in a transaction of its own."""
        with self.store.transaction() as conn:
            return self.enqueue(conn, items)

    def claim(self, output: str, *, limit: int = 100, lease: float = 60.0) -> list[Entry]:
        """Up to `limit` due alerts of `output`, oldest first, leased for `lease` seconds:
        another runner does not take them meanwhile, and a runner killed mid-delivery
        leaves them to be taken again when the lease ends."""
        t = alert_outbox
        now = now_us()
        with self.store.transaction() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.output, t.c.key, t.c.kind, t.c.body, t.c.attempts,
                       t.c.created_us)
                .where(t.c.output == output, t.c.delivered_us.is_(None), t.c.next_us <= now)
                .order_by(t.c.next_us, t.c.id).limit(limit)).all()
            ids = [r[0] for r in rows]
            if ids:
                conn.execute(update(t).where(t.c.id.in_(ids))
                             .values(next_us=now + int(lease * 1_000_000)))
        return [Entry(*r) for r in rows]

    def delivered(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        t = alert_outbox
        with self.store.transaction() as conn:
            conn.execute(update(t).where(t.c.id.in_(list(ids)))
                         .values(delivered_us=now_us(), last_error=None))

    def failed(self, failures: Sequence[tuple[Entry, str]], backoff: Backoff) -> None:
        """Record failed attempts; each row waits `backoff.delay(attempts)` from now.

        Rows failed together with the same count wait the same jittered delay: they come
        back as one batch (one claim), not one by one across the jitter's spread."""
        if not failures:
            return
        t = alert_outbox
        now = now_us()
        delays: dict[int, int] = {}
        with self.store.transaction() as conn:
            for entry, error in failures:
                attempts = entry.attempts + 1
                wait = delays.setdefault(attempts, int(backoff.delay(attempts - 1) * 1e6))
                conn.execute(update(t).where(t.c.id == entry.id).values(
                    attempts=attempts, last_error=error[:_MAX_ERROR], next_us=now + wait))

    def next_due(self, output: str) -> int | None:
        """When the next undelivered alert of `output` is due (µs), None when none waits:
        a read, so a delivery loop sleeps until then instead of polling with writes."""
        t = alert_outbox
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.min(t.c.next_us)).where(
                t.c.output == output, t.c.delivered_us.is_(None))).scalar()

    def retry_now(self, output: str | None = None) -> int:
        """Make every undelivered alert (of `output`) due now; returns how many."""
        t = alert_outbox
        cond = [t.c.delivered_us.is_(None)]
        if output:
            cond.append(t.c.output == output)
        with self.store.transaction() as conn:
            return conn.execute(update(t).where(and_(*cond)).values(next_us=now_us())).rowcount

    def depth(self) -> dict[str, int]:
        """Undelivered alerts by output."""
        t = alert_outbox
        with self.store.engine.connect() as conn:
            return dict(conn.execute(select(t.c.output, func.count())
                                     .where(t.c.delivered_us.is_(None))
                                     .group_by(t.c.output)).all())

    def status(self) -> list[OutputStatus]:
        t = alert_outbox
        pending = t.c.delivered_us.is_(None)
        with self.store.engine.connect() as conn:
            waiting = {o: (n, oldest) for o, n, oldest in conn.execute(
                select(t.c.output, func.count(), func.min(t.c.created_us))
                .where(pending).group_by(t.c.output))}
            done = dict(conn.execute(select(t.c.output, func.count())
                                     .where(t.c.delivered_us.is_not(None))
                                     .group_by(t.c.output)).all())
            errors = {o: e for o, e in conn.execute(
                select(t.c.output, t.c.last_error).where(pending, t.c.last_error.is_not(None))
                .order_by(t.c.id))}
        names = sorted(set(waiting) | set(done))
        return [OutputStatus(o, waiting.get(o, (0, None))[0], done.get(o, 0),
                             waiting.get(o, (0, None))[1], errors.get(o)) for o in names]

    def keys(self, output: str) -> list[tuple[str, bool]]:
        """(key, delivered) of every alert of `output`, oldest first (tests, `status`)."""
        t = alert_outbox
        with self.store.engine.connect() as conn:
            return [(k, d is not None) for k, d in conn.execute(
                select(t.c.key, t.c.delivered_us).where(t.c.output == output).order_by(t.c.id))]

    def prune(self, delivered_before_us: int) -> int:
        """Forget alerts delivered before the given time; returns how many."""
        t = alert_outbox
        with self.store.transaction() as conn:
            return conn.execute(delete(t).where(t.c.delivered_us.is_not(None),
                                                t.c.delivered_us < delivered_before_us)
                                ).rowcount
