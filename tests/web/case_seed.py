"""A rapid-reaction picture on the coordination cell's node, for the dashboard's case pages.

cert-south asked for help with a ransomware incident (AMBER+STRICT); the cell dispatched
cert-north's alice and bob. Its items carry their own TLP: an AMBER+STRICT task named to
south and the cell only (the team does not read it), a GREEN task, an AMBER one, a CLEAR
note, events at several times and fidelities, an observable and its recorded hunt hit,
evidence with a signed custody chain, and a second evidence item changed after custody
attested it (verification reports `changed`). Hostile text sits in every free-text field.
cert-east asked for help too (not dispatched): nobody else but the cell reads its case.
A blind hit of cert-south against a protected indicator of cert-north sits among sightings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.keys.signing import node_keys
from shieldwall.policy import Members, member_identity_id
from shieldwall.respond.custody import custody_event, heads
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.model import (
    INCIDENT_CORE_EXTENSION,
    Marking,
    assistance_request,
    case_audience,
    dispatch,
    event,
    link,
    next_version,
    note,
    observable,
    published_objects,
    task,
)
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Store
from shieldwall.web.users import create_user

SOUTH, CELL, NORTH, EAST = "cert-south", "coordination", "cert-north", "cert-east"
PARTNER, ORG = "partnerland", "ngo-org"
TIERS = {SOUTH: "ally", CELL: "ally", NORTH: "ally", EAST: "ally", PARTNER: "partner",
         ORG: "organisation"}
USERS = {"sam": SOUTH, "cora": CELL, "nia": NORTH, "eve": EAST, "pat": PARTNER, "olga": ORG}
TEAM = [f"{NORTH}:alice", f"{NORTH}:bob"]
AUDIENCE = case_audience(SOUTH, CELL, TEAM)
HOSTILE = '<script>alert("sw")</script>'
TS = "2026-12-01T10:00:00.000Z"
# Events given out of order on purpose: the page shows them by time.
EVENT_TIMES = [("Encryption observed on file servers", "2026-12-01T09:40:00.000Z", "minute"),
               ("Phishing mail opened", "2026-11-30T16:05:00.000Z", "second"),
               ("Ransom note found", "2026-12-01T11:00:00.000Z", "hour"),
               ("First beacon to C2", "2026-11-30T17:20:00.000Z", "minute")]
STRICT_TASK = "Brief the minister (south and cell only)"
EAST_CASE = "Eastern water utility outage"


@dataclass
class CaseSeed:
    passwords: dict[str, str]
    case_id: str
    east_case_id: str
    request_id: str
    east_request_id: str
    strict_task: str
    blind_sighting: str
    changed_evidence: str
    good_evidence: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)


def seed_cases(store: Store, keys_home: Path) -> CaseSeed:
    reg = Members(store.engine)
    for name, tier in TIERS.items():
        if reg.get(name) is None:
            reg.add(name, tier)
    passwords = {u: create_user(store, u, m, "analyst") for u, m in USERS.items()}
    strict = Marking(TLP.AMBER_STRICT, AUDIENCE)
    inc = {"type": "incident", "spec_version": "2.1", "id": new_id("incident"),
           "created": TS, "modified": TS, "created_by_ref": member_identity_id(SOUTH),
           "name": f"Ransomware at the grid operator {HOSTILE}", **strict.props(),
           "extensions": {INCIDENT_CORE_EXTENSION: {
               "extension_type": "property-extension", "determination": "suspected",
               "investigation_status": "open"}}}
    req = assistance_request(requester=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics", "malware-analysis"], marking=strict,
                             description=f"help {HOSTILE}")
    disp = dispatch(request=req, cell=CELL, team=TEAM, lead=TEAM[0],
                    reason=f"north knows LockBit {HOSTILE}")
    south: list[dict[str, Any]] = [inc, req, link(req, inc["id"])]
    cell: list[dict[str, Any]] = [disp, link(disp, inc["id"]), link(disp, req["id"])]
    north: list[dict[str, Any]] = []
    items: dict[str, dict[str, Any]] = {}

    def add(into: list[dict[str, Any]], key: str, obj: dict[str, Any]) -> None:
        items[key] = obj
        into.extend([obj, link(obj, inc["id"])])

    add(north, "task-script", task(creator=NORTH, name=HOSTILE, marking=strict,
                                   outcome="ongoing", assignee=TEAM[0],
                                   description=f"image {HOSTILE}", priority=80))
    add(north, "task-green", task(creator=NORTH, name="Collect firewall logs",
                                  marking=Marking(TLP.GREEN), outcome="successful"))
    add(south, "task-amber", task(creator=SOUTH, name="Restore from backup",
                                  marking=Marking(TLP.AMBER), outcome="failed"))
    add(south, "task-pending", task(creator=SOUTH, name="Notify the regulator",
                                    marking=strict, outcome="pending"))
    add(south, "task-strict", task(creator=SOUTH, name=STRICT_TASK,
                                   marking=Marking(TLP.AMBER_STRICT, (SOUTH, CELL))))
    od = observable("ipv4-addr:203.0.113.9", creator=NORTH, marking=strict)
    add(north, "observable", od)
    for i, (name, at, fidelity) in enumerate(EVENT_TIMES):
        add(north, f"event-{i}", event(creator=NORTH, name=name, marking=strict, start=at,
                                       fidelity=fidelity, source=f"zeek {HOSTILE}"))
    add(north, "hunt-hit", event(creator=NORTH, name="ipv4-addr:203.0.113.9 seen 4x in "
                                 "cert-north's logs", marking=strict,
                                 start="2026-12-01T08:00:00.000Z", fidelity="second",
                                 source="case observable hunt", observable_refs=[od["id"]]))
    add(south, "note", note(creator=SOUTH, case_id=inc["id"], content=f"note {HOSTILE}",
                            marking=Marking(TLP.CLEAR)))
    keys = node_keys(keys_home, SOUTH)
    disk = evidence_item(creator=SOUTH, case_id=inc["id"], name=f"disk image {HOSTILE}",
                         sha256="ab" * 32, size=512_000, kept_at=f"locker 3 {HOSTILE}",
                         collected_by=f"{SOUTH}:carol", collected_how="write-blocked dd",
                         marking=strict)
    mem = evidence_item(creator=SOUTH, case_id=inc["id"], name="memory of srv-07",
                        sha256="cd" * 32, size=16_000, kept_at="south share",
                        collected_by=f"{SOUTH}:carol", collected_how="winpmem",
                        marking=strict)
    custody: list[dict[str, Any]] = []
    for ev, action, extra in ((disk, "collected", {}),
                              (disk, "handed-over", {"from_holder": "carol",
                                                     "to_holder": TEAM[0]}),
                              (mem, "collected", {})):
        custody.append(custody_event(keys=keys, case_id=inc["id"], evidence=ev, action=action,
                                     actor=f"{SOUTH}:carol", chain_heads=heads(custody),
                                     details=extra))
    add(south, "evidence", disk)
    add(south, "memory", mem)
    for i, c in enumerate(custody):
        add(south, f"custody-{i}", c)
    changed = next_version(mem, kept_at="somewhere else")  # never attested by custody

    # cert-east's request: the cell reads it; south, north and the rest do not.
    east_mark = Marking(TLP.AMBER_STRICT, case_audience(EAST, CELL))
    east_inc = {**inc, "id": new_id("incident"), "created_by_ref": member_identity_id(EAST),
                "name": EAST_CASE, **east_mark.props()}
    east_req = assistance_request(requester=EAST, cell=CELL, incident_id=east_inc["id"],
                                  needs=["ddos"], marking=east_mark)
    east = [east_inc, east_req, link(east_req, east_inc["id"])]

    blind = {
        "type": "sighting", "spec_version": "2.1", "id": new_id("sighting"), "created": TS,
        "modified": TS, "created_by_ref": member_identity_id(SOUTH),
        "sighting_of_ref": "x-shieldwall-blind-set--5b7d4c8e-1c1e-4c2a-9d3e-0d0c0b0a0908",
        "where_sighted_refs": [member_identity_id(SOUTH)], "count": 2,
        "first_seen": TS, "last_seen": TS, "summary": False,
        "description": f"A protected indicator of {NORTH} matched telemetry of {SOUTH}.",
        "object_marking_refs": [tlp_marking_ref(TLP.AMBER_STRICT)],
        AUDIENCE_PROPERTY: sorted({NORTH, SOUTH}),
        "x_shieldwall_blind_handle": "h-0f3a", "x_shieldwall_blind_owner": NORTH,
        "x_shieldwall_explanation": [{"protected_by": NORTH, "field": "id.resp_h",
                                      "file": "conn.log", "line": 7, "observed_at": TS}],
    }
    store.put_many(published_objects(), Provenance(CELL, "local"))
    store.put(keys.card(), Provenance(SOUTH, "taxii"))
    for creator, objs in ((SOUTH, [*south, blind]), (CELL, cell), (NORTH, north),
                          (EAST, east), (SOUTH, [changed])):
        result = store.put_many(objs, Provenance(creator, "taxii"))
        assert not result.rejected, result.rejected
    return CaseSeed(passwords, inc["id"], east_inc["id"], req["id"], east_req["id"],
                    items["task-strict"]["id"], blind["id"], mem["id"], disk["id"], items)
