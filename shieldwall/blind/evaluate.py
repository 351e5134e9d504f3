"""The owner's side of blind matching: evaluate blinded values for allies, within limits.

An ally sends a batch of blinded elements (32 bytes each, RFC 9497 `BlindedElement`); the
owner answers the evaluated elements and one batch DLEQ proof that they were made with the
key whose public half its blind sets name. The owner learns nothing about the values, only
how many an ally asked about, which is what it limits and watches:

- only members of the ally tier are answered (`refused` otherwise, 403);
- a daily quota per ally (UTC day); a request that would exceed it is refused whole, at
  once (429), and raises the alarm;
- an alarm when an ally's day goes far above what it usually asks (`alarm_factor` times
  the median of its previous days with any use, and at least `alarm_floor`);
- every request, answered or refused, is a row of the audit log (`blind_audit`), and
  counted in `metrics()` for the node's /metrics.

A request names the key epoch it expects (the one of the set it holds); another epoch is
refused (409) with the current one, so an ally with a stale set fetches the new one
instead of caching outputs no set will hold.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, insert, select, update

from shieldwall.blind.tables import blind_audit, blind_usage
from shieldwall.keys.oprf import OprfKey, current_epoch, oprf_key
from shieldwall.stix.timestamps import now_us
from shieldwall.store import Store

log = logging.getLogger("shieldwall.blind")

ELEMENT_BYTES = 32
PROOF_BYTES = 64
MAX_BATCH = 16_384  # the library takes up to 65,535; this bounds one request's CPU (~2 s)
ALLY = "ally"

_COUNTS: Counter[str] = Counter()
_LOCK = threading.Lock()


def metrics() -> dict[str, int]:
    """Counters of this process since it started, for the node's /metrics:
    `blind_requests_total`, `blind_evaluations_total` (values evaluated),
    `blind_refused_total`, `blind_quota_refused_total`, `blind_alarms_total`."""
    with _LOCK:
        return {f"blind_{k}_total": _COUNTS[k]
                for k in ("requests", "evaluations", "refused", "quota_refused", "alarms")}


def _count(**kw: int) -> None:
    with _LOCK:
        _COUNTS.update(kw)


@dataclass(frozen=True)
class Limits:
    daily_quota: int = 2_000_000
    alarm_factor: float = 10.0
    alarm_floor: int = 10_000
    history_days: int = 14


@dataclass
class Answer:
    """What the endpoint sends: `status` 200 with `body` (the library's serialised batch
    output: the proof, then the evaluated elements), or an error status and `message`."""

    status: int
    body: bytes = b""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Evaluator:
    """One per server process; thread-safe (the key is read once per epoch)."""

    def __init__(self, home: Path, store: Store, limits: Limits | None = None) -> None:
        self.home = home
        self.store = store
        self.limits = limits or Limits()
        self._key: tuple[int, Any, OprfKey] | None = None
        self._lock = threading.Lock()
        # One quota check-and-count, one audit row, at a time: SQLite takes one writer.
        self._usage_lock = threading.RLock()

    def _evaluator(self) -> tuple[int, Any]:
        epoch = current_epoch(self.home)
        with self._lock:
            if self._key is None or self._key[0] != epoch:
                key = oprf_key(self.home, epoch)
                self._key = (epoch, key.evaluator(), key)
            return self._key[0], self._key[1]

    def __call__(self, member: str, tier: str, epoch: int | None, body: bytes) -> Answer:
        _count(requests=1)
        n = len(body) // ELEMENT_BYTES
        current, ev = self._evaluator()
        head = {"X-Shieldwall-Blind-Epoch": str(current)}
        if tier != ALLY:
            return self._refuse(member, current, n, 403, "refused",
                                "blind evaluation is for allies only", head)
        if not body or len(body) % ELEMENT_BYTES or n > MAX_BATCH:
            return self._refuse(member, current, n, 400, "malformed",
                                f"the body is 1 to {MAX_BATCH:,} blinded elements of "
                                f"{ELEMENT_BYTES} bytes", head)
        if epoch is not None and epoch != current:
            return self._refuse(member, current, n, 409, "stale-epoch",
                                f"key epoch {epoch} is not the current one ({current}); "
                                "fetch the owner's newest blind set", head)
        with self._usage_lock:
            quota = self._take(member, n)
        if quota is not None:
            _count(quota_refused=1)
            return self._refuse(member, current, n, 429, "quota", quota,
                                head | {"Retry-After": str(_seconds_to_midnight())})
        from voprf import ristretto

        try:
            blinded = [ristretto.BlindedInput.deserialize(body[i:i + ELEMENT_BYTES])
                       for i in range(0, len(body), ELEMENT_BYTES)]
            out = bytes(ev.evaluate_batch(blinded).serialize())
        except (ValueError, TypeError):
            return self._refuse(member, current, n, 400, "malformed",
                                "a blinded element is not a ristretto255 group element", head)
        _count(evaluations=n)
        self._audit(member, current, n, "answered", "")
        return Answer(200, out, headers=head)

    # ---- quota, alarm, audit ----------------------------------------------------------------

    def _take(self, member: str, n: int) -> str | None:
        """Count `n` against today's quota; the refusal's message when it would exceed it.

        The read and the update are one write transaction serialised with the store's other
        writes: on SQLite a transaction that began by reading cannot upgrade once another
        connection has committed, and the evaluation would fail with "database is locked"."""
        day = _today()
        lim = self.limits
        with self.store.transaction() as conn:
            row = conn.execute(select(blind_usage.c.asked).where(and_(
                blind_usage.c.member == member, blind_usage.c.day == day))).first()
            asked = int(row[0]) if row else 0
            over = asked + n > lim.daily_quota
            if not over:
                conn.execute(insert(blind_usage).values(
                    member=member, day=day, asked=n, requests=1) if row is None else
                    update(blind_usage).where(and_(
                        blind_usage.c.member == member, blind_usage.c.day == day)).values(
                        asked=blind_usage.c.asked + n, requests=blind_usage.c.requests + 1))
            since = (datetime.now(UTC) - timedelta(days=lim.history_days)).strftime("%Y-%m-%d")
            past = [int(r[0]) for r in conn.execute(select(blind_usage.c.asked).where(and_(
                blind_usage.c.member == member, blind_usage.c.day < day,
                blind_usage.c.day >= since)))]
        if over:  # alarmed after the transaction: the alarm's audit row is a write of its own
            self._alarm(member, asked + n, f"over its daily quota of {lim.daily_quota:,} "
                        f"evaluations ({asked:,} answered today, {n:,} more asked)")
            return (f"daily quota of {lim.daily_quota:,} blind evaluations reached "
                    f"({asked:,} answered today); try again tomorrow (UTC)")
        usual = statistics.median(past) if past else 0
        limit = max(lim.alarm_floor, lim.alarm_factor * usual)
        if asked <= limit < asked + n:  # the request that crosses the line raises it, once
            self._alarm(member, asked + n, f"asked about {asked + n:,} values today, usually "
                        f"{int(usual):,} a day")
        return None

    def _alarm(self, member: str, asked: int, why: str) -> None:
        _count(alarms=1)
        log.warning("blind matching alarm: ally %s %s", member, why)
        self._audit(member, current_epoch(self.home), asked, "alarm", why)

    def _refuse(self, member: str, epoch: int, n: int, status: int, outcome: str,
                message: str, headers: dict[str, str]) -> Answer:
        _count(refused=1)
        self._audit(member, epoch, n, outcome, message)
        return Answer(status, message=message, headers=headers)

    def _audit(self, member: str, epoch: int, n: int, outcome: str, detail: str) -> None:
        with self._usage_lock, self.store.engine.begin() as conn:
            conn.execute(insert(blind_audit).values(
                at_us=now_us(), member=member, epoch=epoch, asked=n, outcome=outcome,
                detail=detail[:500]))


def audit_log(store: Store, member: str | None = None, limit: int = 100
              ) -> list[dict[str, Any]]:
    """The newest audit rows first (for `blind list --audit` and the dashboard)."""
    q = select(blind_audit).order_by(blind_audit.c.id.desc()).limit(limit)
    if member:
        q = q.where(blind_audit.c.member == member)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


def endpoint(cfg: Any, store: Store) -> Evaluator:
    """The evaluator a served node mounts, with the limits of its config's `[blind]`."""
    b = cfg.blind
    return Evaluator(cfg.home, store, Limits(b.daily_quota, b.alarm_factor, b.alarm_floor))
