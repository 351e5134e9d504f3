"""The alliance view: which members sighted which shared indicator, and when.

Built from the sightings this node holds (its own and those federation delivered), so
every node shows the same picture once sync has caught up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shieldwall.policy import member_identity_id
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Query, Store


@dataclass
class AllianceHit:
    indicator_id: str
    indicator: str  # its name, else its pattern
    member: str
    first_seen_us: int
    last_seen_us: int
    count: int
    learned_us: int  # when this node first held a sighting of it by that member
    via: str  # who delivered it here (the member itself, or the peer that relayed it)


def alliance_view(store: Store, members: Iterable[str] = ()) -> list[AllianceHit]:
    """Hits per (indicator, member), oldest first. `members`: names to resolve identity
    ids with (registered members, peers, this node); identity objects in the store count too."""
    names = {member_identity_id(m): m for m in members}
    for row in store.iter_query(Query(types=["identity"])):
        if row.name:
            names.setdefault(row.id, row.name)
    hits: dict[tuple[str, str], AllianceHit] = {}
    indicators: dict[str, str] = {}
    for row in store.iter_query(Query(types=["sighting"])):
        s = row.obj()
        iid = str(s.get("sighting_of_ref", ""))
        if iid not in indicators:
            ind = store.get(iid)
            indicators[iid] = (ind.name or str(ind.obj().get("pattern", ""))) if ind else iid
        refs = s.get("where_sighted_refs") or [s.get("created_by_ref") or row.source]
        first = _ts(s.get("first_seen")) or row.version_us
        last = _ts(s.get("last_seen")) or first
        for ref in refs:
            member = names.get(str(ref), str(ref))
            key = (iid, member)
            hit = hits.get(key)
            if hit is None:
                hits[key] = AllianceHit(iid, indicators[iid], member, first, last,
                                        int(s.get("count", 1)), row.date_added_us, row.source)
            else:
                hit.first_seen_us = min(hit.first_seen_us, first)
                hit.last_seen_us = max(hit.last_seen_us, last)
                hit.count += int(s.get("count", 1))
                hit.learned_us = min(hit.learned_us, row.date_added_us)
    return sorted(hits.values(), key=lambda h: (h.indicator, h.first_seen_us, h.member))


def members_hit(view: list[AllianceHit]) -> dict[str, set[str]]:
    """indicator id -> the members that sighted it."""
    out: dict[str, set[str]] = {}
    for h in view:
        out.setdefault(h.indicator_id, set()).add(h.member)
    return out


def _ts(value: object) -> int:
    try:
        return parse_ts(str(value)) if value else 0
    except ValueError:
        return 0
