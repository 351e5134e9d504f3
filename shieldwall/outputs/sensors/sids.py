"""Stable Suricata rule ids: one `sid` per indicator exported as a rule, kept in the store.

An alert names its rule by `sid`; keeping the sid per indicator (table `sensor_sids`,
migration 0012) lets an alert map back to the indicator after any number of exports and
restarts, and lets a sensor's own tuning (thresholds, suppressions by sid) survive them.
`rev` grows when what the rule is written from changes (the indicator's new version).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    select,
)

from shieldwall.errors import ShieldwallError
from shieldwall.store import Store

# Suricata's range for local rules (suricata-check's SidChecker names it); the first
# hundred are the dataset rules', whose text never changes.
LOCAL_FIRST, LOCAL_LAST = 1_000_000, 1_999_999
FIXED = 100

sensor_sids = Table(
    "sensor_sids",
    MetaData(),
    Column("indicator_id", String(300), primary_key=True),
    Column("sid", BigInteger, nullable=False),
    Column("rev", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
)


class SidError(ShieldwallError):
    """No sid left in the range given."""


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SidBook:
    """The sids of exported indicators: read once, new ones and new revs written by `flush`."""

    def __init__(self, store: Store, first: int = LOCAL_FIRST, last: int = LOCAL_LAST) -> None:
        self.store = store
        self.first, self.last = first, last
        with store.engine.connect() as conn:
            rows = conn.execute(select(sensor_sids)).all()
        self.known: dict[str, tuple[int, int, str]] = {r[0]: (r[1], r[2], r[3]) for r in rows}
        taken = [r[1] for r in rows if first <= r[1] <= last]
        self.next = max([first + FIXED - 1, *taken]) + 1
        self.new: dict[str, tuple[int, int, str]] = {}
        self.changed: dict[str, tuple[int, int, str]] = {}

    def fixed(self, n: int) -> int:
        """The sid of the `n`th dataset rule."""
        return self.first + n

    def get(self, indicator_id: str, print_: str) -> tuple[int, int]:
        """(sid, rev) for the indicator's rule written from `print_` (a fingerprint)."""
        got = self.known.get(indicator_id)
        if got is None:
            if self.next > self.last:
                raise SidError(f"no Suricata sid left in {self.first}-{self.last}; "
                               "give a wider range with --sid-range")
            got = (self.next, 1, print_)
            self.next += 1
            self.known[indicator_id] = self.new[indicator_id] = got
        elif got[2] != print_:
            got = (got[0], got[1] + 1, print_)
            self.known[indicator_id] = got
            if indicator_id in self.new:
                self.new[indicator_id] = got
            else:
                self.changed[indicator_id] = got
        return got[0], got[1]

    def indicator_of(self) -> dict[int, str]:
        return {sid: iid for iid, (sid, _, _) in self.known.items()}

    def flush(self) -> None:
        """Write the sids handed out and the revs bumped since the last flush.

        On the bare driver, as `Store.tag`: a first export hands out a sid per rule
        (150,000 at a million indicators), and SQLAlchemy's executemany spent ~1.2-1.8 s of
        CPU building their parameters."""
        if not self.new and not self.changed:
            return
        m = "?" if self.store.dialect == "sqlite" else "%s"
        with self.store.transaction() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                if self.new:
                    cur.executemany(
                        "INSERT INTO sensor_sids (indicator_id, sid, rev, fingerprint) "
                        f"VALUES ({m}, {m}, {m}, {m})",
                        [(i, s, r, f) for i, (s, r, f) in self.new.items()])
                if self.changed:
                    cur.executemany(
                        f"UPDATE sensor_sids SET rev = {m}, fingerprint = {m} "
                        f"WHERE indicator_id = {m}",
                        [(r, f, i) for i, (_, r, f) in self.changed.items()])
            finally:
                cur.close()
        self.new, self.changed = {}, {}


def sid_map(store: Store) -> dict[int, str]:
    """sid -> indicator id, for reading alerts back (`detect.readers.sensor_alerts`)."""
    with store.engine.connect() as conn:
        return {int(s): str(i) for i, s in conn.execute(
            select(sensor_sids.c.indicator_id, sensor_sids.c.sid))}
