"""What every export of a case shows, computed once from the case a reader may see: the
TLP of each item and of the whole document, and the timeline's entries.

The document's TLP is the most restrictive level among what it holds (TLP 2.0: a document
is marked as its most restricted part), so a report that holds one AMBER+STRICT task is an
AMBER+STRICT document, and one made for a reader who may not see that task is not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shieldwall.respond.cases import Case
from shieldwall.respond.model import observable_text
from shieldwall.stix.markings import TLP, resolve_tlp


def tlp_of(obj: Mapping[str, Any]) -> TLP:
    """The item's own level (an unmarked one is held at AMBER, the store's default)."""
    return resolve_tlp(obj, TLP.AMBER)


def items(case: Case) -> Iterator[dict[str, Any]]:
    """Every object of the case the reader may see, the incident first."""
    if case.incident is not None:
        yield case.incident
    for group in (case.requests, case.dispatches, case.tasks, case.events, case.impacts,
                  case.notes, case.observed, case.evidence, case.custody, case.other):
        yield from group


def document_tlp(case: Case) -> TLP:
    return max((tlp_of(o) for o in items(case)), default=TLP.CLEAR)


def observables(case: Case) -> list[tuple[str, dict[str, Any]]]:
    """(`TYPE:VALUE`, its observed-data) for each observable of the case."""
    out = []
    for od in case.observed:
        text = observable_text(od)
        if text:
            out.append((text, od))
    return sorted(out, key=lambda p: (p[1].get("first_observed") or "", p[0]))


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    time: str  # STIX timestamp
    desc: str  # what the time means (Timesketch's timestamp_desc)
    message: str
    kind: str  # the STIX type of the item it comes from
    item_id: str
    tlp: TLP
    source: str | None = None
    fidelity: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def timeline(case: Case) -> list[Entry]:
    """The case's timeline: its events at their time (or when recorded, when they have
    none), the request, the dispatch, evidence collected and custody events; by time."""
    out: list[Entry] = []
    for e in case.events:
        when = e.get("start_time")
        refs = [*(e.get("sighting_refs") or ()), *(e.get("x_shieldwall_observable_refs") or ())]
        out.append(Entry(
            str(when or e["created"]), "Event time" if when else "Event recorded",
            str(e.get("name") or "event"), "event", e["id"], tlp_of(e),
            source=e.get("x_shieldwall_source"),
            fidelity=e.get("start_time_fidelity") if when else None,
            details={"status": e.get("status"), "description": e.get("description"),
                     "refs": refs}))
    for r in case.requests:
        out.append(Entry(str(r["created"]), "Assistance requested",
                         f"{r.get('requester')} asks {r.get('cell')} for help: "
                         + ", ".join(r.get("needs") or ()), r["type"], r["id"], tlp_of(r),
                         source=str(r.get("requester"))))
    for d in case.dispatches:
        out.append(Entry(str(d["created"]), "Team dispatched",
                         f"{d.get('cell')} dispatches {', '.join(d.get('team') or ())} "
                         f"(lead {d.get('lead')})", d["type"], d["id"], tlp_of(d),
                         source=str(d.get("cell")), details={"reason": d.get("reason")}))
    for ev in case.evidence:
        out.append(Entry(str(ev.get("collected") or ev["created"]), "Evidence collected",
                         f"{ev.get('name')} collected by {ev.get('collected_by')} "
                         f"({ev.get('collected_how')})", ev["type"], ev["id"], tlp_of(ev),
                         source=str(ev.get("collected_by")),
                         details={"sha256": ev.get("sha256"), "kept_at": ev.get("kept_at")}))
    names = {ev["id"]: ev.get("name") for ev in case.evidence}
    for c in case.custody:
        what = names.get(c.get("evidence_ref")) or c.get("evidence_ref")
        action = c.get("custody_action")
        out.append(Entry(str(c.get("occurred") or c["created"]), f"Custody: {action}",
                         f"{what}: {action} by {c.get('actor')}", c["type"], c["id"],
                         tlp_of(c), source=str(c.get("actor")),
                         details={k: c.get(k) for k in ("from_holder", "to_holder", "location",
                                                        "tool", "result") if c.get(k)}))
    return sorted(out, key=lambda e: (e.time, e.kind, e.item_id))


def findings(case: Case) -> list[dict[str, Any]]:
    """The other STIX objects linked to the case (indicators, attack-patterns, malware,
    sightings, ...), each with what names it best."""
    out = []
    for o in sorted(case.other, key=lambda o: (o.get("type", ""), o.get("name") or "", o["id"])):
        refs = [r.get("external_id") for r in o.get("external_references") or ()
                if isinstance(r, dict) and r.get("external_id")]
        detail = o.get("pattern") or ", ".join(refs) or o.get("description")
        out.append({"type": o.get("type"), "name": o.get("name") or o["id"],
                    "detail": detail, "tlp": tlp_of(o).label})
    return out
