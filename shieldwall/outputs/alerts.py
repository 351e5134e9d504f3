"""What makes an alert, for whom: the store's change feed, read as each output's audience.

Each output has an audience, a member, and reads the store as TAXII would serve it to
that member: the same `Access`, applied in SQL to every version since the output's
cursor. What the audience could not read over TAXII (AMBER+STRICT or RED not naming
it, AMBER for a partner) is never read here, so it never becomes an alert.

Of what the audience may read, these make alerts (`config.ALERT_KINDS`):

- `sighting`: a new sighting at the member (its identity in `where_sighted_refs`);
- `sighting-elsewhere`: a new sighting elsewhere of an indicator the member created;
- `campaign`: a campaign naming the member (`x_shieldwall_members`), again when the
  members it names change;
- `consultation`: a campaign's consultation recommendation above the lowest level, again
  when the level changes (the recommendation is computed by the caller: `recommend`);
- `assistance-request`: a member asks the alliance for help (for the cell).

The alerts and the cursor move in one transaction (`Outbox.enqueue`): each alert is
enqueued once per output, with a key that identifies it to the receiver. A new output
starts at the store's newest version: it alerts on what comes, not on history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, delete

from shieldwall.outputs.outbox import Outbox, Pending
from shieldwall.stix.outbound import held_text
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.store import Access, Query, Store, StoredVersion
from shieldwall.store.schema import kv

ASSISTANCE_REQUEST = "x-shieldwall-assistance-request"  # built in respond/; matched by name
TRIGGER_TYPES = ("sighting", "campaign", ASSISTANCE_REQUEST)
CURSOR_KEY = "outputs:cursor:"
PAGE = 1_000

# (campaign row, audience) -> the consultation level worth an alert, or None: the lowest
# level, or a policy the audience may not read (its recommendations are not the audience's).
Recommend = Callable[[StoredVersion, "Audience"], str | None]


@dataclass(frozen=True)
class Audience:
    """An output as routing sees it: its name, the member it serves, that member's
    identity, the `Access` TAXII gives that member, and the alert kinds it wants."""

    output: str
    member: str
    identity: str
    access: Access
    kinds: frozenset[str]


@dataclass(frozen=True)
class Alert:
    kind: str
    summary: str
    row: StoredVersion
    dedup: str  # what makes it new: a repeat of the same dedup is the same alert
    related: tuple[dict[str, Any], ...] = ()


def alert_key(output: str, kind: str, dedup: str) -> str:
    """The idempotency key: one per alert per output, the same on every routing."""
    return hashlib.sha256(f"{output}\x00{kind}\x00{dedup}".encode()).hexdigest()[:40]


class Router:
    """Turns new stored versions into outbox rows, output by output."""

    def __init__(self, store: Store, audiences: Sequence[Audience], *, node_member: str,
                 recommend: Recommend | None = None) -> None:
        self.store = store
        self.audiences = list(audiences)
        self.node_member = node_member
        self.recommend = recommend
        self.outbox = Outbox(store)
        self._indicators: dict[str, StoredVersion | None] = {}

    def route(self) -> int:
        """Enqueue the alerts of everything stored since each output's cursor."""
        return sum(self.route_one(a) for a in self.audiences)

    def route_one(self, aud: Audience) -> int:
        added = 0
        while True:
            head = self.store.newest_seq()  # every row up to here has committed
            saved = self.store.kv_get(CURSOR_KEY + aud.output)
            if saved is None:  # a new output: from now on
                with self.store.transaction() as conn:
                    _save_cursor(conn, aud.output, head)
                return added
            cursor = int(saved)
            page = self.store.query(Query(types=TRIGGER_TYPES, versions="all",
                                          after_seq=cursor, access=aud.access, limit=PAGE))
            self._indicators = {}  # looked up afresh for each page
            pending = [self._pending(aud, a) for row in page.rows
                       for a in self.alerts(aud, row)]
            last = page.rows[-1].seq if page.rows else cursor
            # Rows between the last one read and `head` are ones this audience may not
            # read, or no trigger: the cursor passes them once, never reads them again.
            moved = last if page.more else max(last, head)
            if moved == cursor and not pending:
                return added
            with self.store.transaction() as conn:
                added += self.outbox.enqueue(conn, pending)
                _save_cursor(conn, aud.output, moved)
            if not page.more:
                return added

    def alerts(self, aud: Audience, row: StoredVersion) -> Iterator[Alert]:
        """The alerts one stored version makes for `aud` (which may read it)."""
        obj = row.obj()
        if row.type == "sighting":
            yield from self._sighting(aud, row, obj)
        elif row.type == "campaign":
            members = obj.get("x_shieldwall_members")
            names = sorted(m for m in members if isinstance(m, str)) \
                if isinstance(members, list) else []
            if "campaign" in aud.kinds and aud.member in names:
                yield Alert("campaign", f"campaign involving {aud.member}: {_name(obj)}",
                            row, f"{row.id}|{','.join(names)}")
            if "consultation" in aud.kinds and self.recommend is not None:
                level = self.recommend(row, aud)
                if level:
                    yield Alert("consultation", f"consultation recommended ({level}) for "
                                f"{_name(obj)}", row, f"{row.id}|{level}")
        elif row.type == ASSISTANCE_REQUEST and "assistance-request" in aud.kinds:
            yield Alert("assistance-request", f"assistance requested: {_name(obj)}", row,
                        row.id)

    def _sighting(self, aud: Audience, row: StoredVersion, obj: dict[str, Any]
                  ) -> Iterator[Alert]:
        where = obj.get("where_sighted_refs")
        at_member = isinstance(where, list) and aud.identity in where
        ref = obj.get("sighting_of_ref")
        indicator = self._indicator(ref, aud.access) if isinstance(ref, str) else None
        related = (_stated(indicator),) if indicator is not None else ()
        label = indicator.name or indicator.id if indicator is not None else str(ref)
        if at_member and "sighting" in aud.kinds:
            yield Alert("sighting", f"sighting at {aud.member} of {label}", row, row.id,
                        related)
        elif not at_member and "sighting-elsewhere" in aud.kinds and indicator is not None \
                and (indicator.created_by_ref == aud.identity or (
                    indicator.created_by_ref is None and indicator.source == aud.member)):
            yield Alert("sighting-elsewhere", f"{aud.member}'s indicator {label} sighted "
                        "elsewhere", row, row.id, related)

    def _indicator(self, ref: str, access: Access) -> StoredVersion | None:
        """The sighted indicator as the audience may read it; looked up once a page (many
        sightings of one indicator come together: a hunt's windows, a busy sensor)."""
        if ref not in self._indicators:
            self._indicators[ref] = self.store.get(ref, access)
        return self._indicators[ref]

    def _pending(self, aud: Audience, alert: Alert) -> Pending:
        key = alert_key(aud.output, alert.kind, alert.dedup)
        body = {
            "key": key, "kind": alert.kind, "summary": alert.summary,
            "node": self.node_member, "audience": aud.member,
            "created": format_ts(now_us()), "object": _stated(alert.row),
            "related": list(alert.related),
        }
        return Pending(aud.output, key, alert.kind, orjson.dumps(body).decode())


def _save_cursor(conn: Connection, output: str, seq: int) -> None:
    conn.execute(delete(kv).where(kv.c.key == CURSOR_KEY + output))
    conn.execute(kv.insert().values(key=CURSOR_KEY + output, value=str(seq)))


def _stated(row: StoredVersion) -> dict[str, Any]:
    """The object as TAXII serves it: stating the level this node holds it at."""
    return orjson.loads(held_text(row.json, int(row.tlp)) or row.json)


def _name(obj: dict[str, Any]) -> str:
    name = obj.get("name")
    return name[:200] if isinstance(name, str) and name else str(obj.get("id"))
