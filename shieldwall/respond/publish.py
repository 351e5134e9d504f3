"""Findings protect everyone: a case's observables become indicators, and with the case's
attack-patterns, malware and incident, a STIX `report`, each at the TLP the team chose.

Publishing again makes new versions of the same ids (derived from the publishing member,
the case and the value), never duplicates, and writes nothing when nothing changed. What
is published federates like any intelligence; on arrival every node looks for the new
indicators in the telemetry it keeps (`detect.arrivals`), so a command-and-control address
found in one member's logs is found in the others' within a federation round.

The report refers only to objects whose own TLP is no stricter than its own: a GREEN
report naming an AMBER+STRICT incident's id would tell every member that it exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shieldwall.respond.cases import Case, put_items
from shieldwall.respond.hunting import pattern_of
from shieldwall.respond.model import Marking, RespondError, link, observable_text, stamp
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, resolve_tlp

# What a case holds that is published by reference in the report, as the team found it.
_FINDING_TYPES = frozenset({"attack-pattern", "malware", "tool", "infrastructure",
                            "intrusion-set", "threat-actor", "indicator", "campaign"})
_SAME = ("pattern", "name", "object_marking_refs", "x_shieldwall_audience", "object_refs",
         "description", "revoked")


@dataclass
class Published:
    indicators: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    written: int = 0  # objects stored (new, or new versions)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (observable, why)


def publish(store: Any, member: str, identity: Mapping[str, Any], case: Case, *, tlp: TLP,
            only: Iterable[str] | None = None, now: str | None = None) -> Published:
    """Publish `case`'s findings as `member` at `tlp` (see the module's docstring).

    `only`: the observables (`TYPE:VALUE`, as `case show` lists them) to publish; all by
    default. A TLP:RED publication is refused: RED never leaves the node, so nothing would
    protect anyone."""
    if tlp is TLP.RED:
        raise RespondError("TLP:RED findings never leave this node; publish at AMBER+STRICT "
                           "or lower, or keep them in the case")
    if case.incident is None:
        raise RespondError(f"{case.id}: this node reads no such case")
    wanted = {w.strip() for w in only} if only is not None else None
    marking = Marking(tlp, case.audience()) if tlp >= TLP.AMBER else Marking(tlp)
    ts = now or stamp()
    out = Published()
    writes: list[dict[str, Any]] = []
    seen_texts: set[str] = set()
    for od in case.observed:
        text = observable_text(od)
        if text is None or text in seen_texts:
            continue
        if wanted is not None and text not in wanted:
            continue
        seen_texts.add(text)
        pattern = pattern_of(text)
        if pattern is None:
            out.skipped.append((text, "no STIX pattern for this observable type"))
            continue
        ind = {
            "type": "indicator", "spec_version": "2.1",
            "id": deterministic_id("indicator", f"case-finding|{member}|{case.id}|{text}"),
            "created_by_ref": identity["id"], "created": ts, "modified": ts,
            "name": text, "pattern": pattern, "pattern_type": "stix",
            "valid_from": od.get("first_observed") or ts,
            "indicator_types": ["malicious-activity"],
            "description": f"Found by a rapid reaction team working case {case.id}.",
            **marking.props(),
        }
        out.indicators.append(ind)
    if wanted is not None:
        for text in sorted(wanted - seen_texts):
            out.skipped.append((text, "not an observable of this case"))
    refs = [i["id"] for i in out.indicators]
    for obj in [case.incident, *(o for o in case.other if o.get("type") in _FINDING_TYPES)]:
        if resolve_tlp(obj, TLP.AMBER) <= tlp and obj["id"] not in refs:
            refs.append(obj["id"])
    if not out.indicators and len(refs) <= 1:
        raise RespondError(f"{case.id}: no findings to publish (add observables with "
                           "'case observable add', or attack-patterns and malware)")
    report = {
        "type": "report", "spec_version": "2.1",
        "id": deterministic_id("report", f"case-findings|{member}|{case.id}"),
        "created_by_ref": identity["id"], "created": ts, "modified": ts, "published": ts,
        "name": f"Findings: {case.incident.get('name') or case.id}",
        "report_types": ["incident", "indicator"], "object_refs": refs,
        **marking.props(),
    }
    out.report = report
    case_marking = Marking.of(case.incident).widened(case.audience()).props()
    for obj in [*out.indicators, report]:
        stored = store.get(obj["id"])
        if stored is not None:
            old = stored.obj()
            if all(old.get(k) == obj.get(k) for k in _SAME):
                out.unchanged += 1
                continue
            obj["created"] = old["created"]  # a new version of the same object
            if obj["type"] == "indicator":
                obj["valid_from"] = old.get("valid_from", obj["valid_from"])
            if old["modified"] >= obj["modified"]:
                obj["modified"] = stamp(old["modified"])
        writes.append(obj)
        # The link says the finding came from this case: marked as the case is, not as
        # the finding, so a GREEN indicator does not tell everyone which case it is from.
        writes.append({**link(obj, case.id), **case_marking})
    if writes:
        put_items(store, member, [dict(identity), *writes])
    out.written = sum(1 for w in writes if w["type"] != "relationship")
    return out
