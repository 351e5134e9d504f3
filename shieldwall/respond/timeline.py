"""Pulling what the store already holds into a case's timeline.

A sighting or an incident becomes one `event` of the case: its time (the sighting's
`first_seen`, the incident's first-seen or creation) at second fidelity, its source (who
saw it), and a reference to it. The event repeats that the object exists and when, so it
is marked no wider than the object (`stix.markings.narrowest_audience`), and within the
case's audience. Its id is derived from the case, the member and the object, so pulling
again finds it held and adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shieldwall.respond.cases import Case, add_to_case, item_marking
from shieldwall.respond.model import Marking, event
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, narrowest_audience
from shieldwall.store import Access, Query, Store, StoredVersion
from shieldwall.store.audience import row_marking

SIGHTING_REFS = "x_shieldwall_sighting_refs"  # the incident's sightings (assess.incidents)
RELATED_REFS = "x_shieldwall_related_refs"


def _case_indicators(store: Store, case: Case, access: Access) -> set[str]:
    """Indicators the case names: linked to it, or related to its incident."""
    out = {r for r in (case.incident or {}).get(RELATED_REFS, [])
           if isinstance(r, str) and r.startswith("indicator--")}
    for rel in store.linked([case.id], access):
        r = rel.obj()
        for end in (r.get("source_ref"), r.get("target_ref")):
            if isinstance(end, str) and end.startswith("indicator--"):
                out.add(end)
    return out


def _sightings(store: Store, case: Case, access: Access, named: Sequence[str]
               ) -> list[StoredVersion]:
    ids = {*named, *(r for r in (case.incident or {}).get(SIGHTING_REFS, [])
                     if isinstance(r, str))}
    rows = {r.id: r for r in store.query(Query(ids=sorted(ids), access=access)).rows} \
        if ids else {}
    indicators = _case_indicators(store, case, access)
    if indicators:
        for row in store.iter_query(Query(types=["sighting"], access=access)):
            if row.id not in rows and row.obj().get("sighting_of_ref") in indicators:
                rows[row.id] = row
    return [r for r in rows.values() if r.type == "sighting"]


def _marking(case: Case, row: StoredVersion) -> Marking:
    base = item_marking(case)
    level, names = narrowest_audience([row_marking(row)], base.tlp)
    audience = set(case.audience())
    if names is not None and level >= TLP.AMBER_STRICT:
        audience &= set(names)
    return Marking(level, tuple(sorted(audience)))


def pull_events(store: Store, member: str, case: Case, access: Access, *,
                sighting_ids: Sequence[str] = (), incident_ids: Sequence[str] = ()
                ) -> list[dict[str, Any]]:
    """Events for the case's sightings (and those named) and the named incidents that the
    reader may see and the case does not hold yet; returns those stored."""
    held = {e["id"] for e in case.events}
    made: list[dict[str, Any]] = []
    # (the object, the event's name, its time, sighting_refs, other refs)
    sources: list[tuple[StoredVersion, str, str, list[str], list[str]]] = []
    for row in _sightings(store, case, access, sighting_ids):
        s = row.obj()
        sources.append((row, f"sighting of {s.get('sighting_of_ref')} ({s.get('count', 1)}x)",
                        s.get("first_seen") or s["created"], [row.id], []))
    for row in store.query(Query(ids=sorted(set(incident_ids)), access=access)).rows \
            if incident_ids else []:
        i = row.obj()
        if row.type != "incident":
            continue
        sources.append((row, f"incident: {i.get('name', row.id)}",
                        i.get("x_shieldwall_first_seen") or i["created"], [], [row.id]))
    for row, name, when, sighting_refs, incident_refs in sources:
        eid = deterministic_id("event", f"{case.id}|{member}|{row.id}")
        if eid in held or store.get(eid) is not None:
            continue
        obj = event(creator=member, name=name, marking=_marking(case, row), start=when,
                    fidelity="second", source=f"{row.type} delivered by {row.source}",
                    sighting_refs=sighting_refs, observable_refs=incident_refs)
        obj["id"] = eid
        add_to_case(store, member, case.id, obj)
        made.append(obj)
    return made
