"""An alliance picture for dashboard tests: allies, a partner, GREEN and AMBER intel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shieldwall.policy import Members, member_identity_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.store import Provenance, Store
from shieldwall.web.users import create_user

HOUR = 3_600 * 1_000_000
SECRET_VALUE = "203.0.113.66"
SECRET_NAME = "Hidden beacon relay"
SECRET_CAMPAIGN = "Operation Nightjar"


@dataclass
class Seeded:
    passwords: dict[str, str]
    green_indicator: str
    amber_indicator: str
    green_sighting: str
    amber_sighting: str
    amber_campaign: str
    green_campaign: str
    incident: str


def _id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def indicator(name: str, value: str, tlp: TLP, creator: str) -> dict[str, Any]:
    return {
        "type": "indicator", "spec_version": "2.1", "id": _id("indicator"),
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": name, "pattern": f"[ipv4-addr:value = '{value}']", "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z", "created_by_ref": member_identity_id(creator),
        "object_marking_refs": [tlp_marking_ref(tlp)],
    }


def sighting(ind: dict[str, Any], member: str, tlp: TLP, at_us: int, count: int = 3,
             value: str = "198.51.100.7") -> dict[str, Any]:
    ts = format_ts(at_us)
    ident = member_identity_id(member)
    return {
        "type": "sighting", "spec_version": "2.1", "id": _id("sighting"),
        "created": ts, "modified": ts, "created_by_ref": ident,
        "sighting_of_ref": ind["id"], "where_sighted_refs": [ident], "count": count,
        "first_seen": ts, "last_seen": ts, "object_marking_refs": [tlp_marking_ref(tlp)],
        "x_shieldwall_explanation": [{
            "pattern": ind["pattern"], "atom": f"ipv4-addr:value = '{value}'",
            "field": "id.resp_h", "value": value, "file": f"/var/log/zeek/{member}-conn.log",
            "line": 42, "observed_at": ts,
        }],
    }


def seed(store: Store) -> Seeded:
    reg = Members(store.engine)
    for name, tier in (("estonia", "ally"), ("latvia", "ally"), ("partnerland", "partner")):
        if reg.get(name) is None:
            reg.add(name, tier)
    passwords = {
        "ana": create_user(store, "ana", "estonia", "analyst"),
        "pat": create_user(store, "pat", "partnerland", "read-only"),
    }
    now = now_us()
    green = indicator("Shared C2 server", "198.51.100.7", TLP.GREEN, "latvia")
    amber = indicator(SECRET_NAME, SECRET_VALUE, TLP.AMBER, "latvia")
    s_green = sighting(green, "latvia", TLP.GREEN, now - 2 * HOUR, count=12)
    s_green2 = sighting(green, "estonia", TLP.GREEN, now - HOUR, count=4)
    s_amber = sighting(amber, "estonia", TLP.AMBER, now - HOUR, count=7, value=SECRET_VALUE)
    ts = format_ts(now)
    camp_green = {
        "type": "campaign", "spec_version": "2.1", "id": _id("campaign"), "created": ts,
        "modified": ts, "name": "Operation Frostbite", "first_seen": format_ts(now - 5 * HOUR),
        "last_seen": ts, "object_marking_refs": [tlp_marking_ref(TLP.GREEN)],
    }
    camp_amber = dict(camp_green, id=_id("campaign"), name=SECRET_CAMPAIGN,
                      object_marking_refs=[tlp_marking_ref(TLP.AMBER)])
    incident = {
        "type": "incident", "spec_version": "2.1", "id": _id("incident"), "created": ts,
        "modified": ts, "name": "Latvian grid operator intrusion",
        "object_marking_refs": [tlp_marking_ref(TLP.GREEN)],
    }
    rels = [
        {"type": "relationship", "spec_version": "2.1", "id": _id("relationship"),
         "created": ts, "modified": ts, "relationship_type": rt, "source_ref": s,
         "target_ref": t, "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]}
        for rt, s, t in (("indicates", green["id"], camp_green["id"]),
                         ("attributed-to", incident["id"], camp_green["id"]))
    ]
    objs = [green, amber, s_green, s_green2, s_amber, camp_green, camp_amber, incident, *rels]
    result = store.put_many(objs, Provenance("latvia", "taxii"))
    assert result.stored == len(objs), result.rejected
    return Seeded(passwords, green["id"], amber["id"], s_green["id"], s_amber["id"],
                  camp_amber["id"], camp_green["id"], incident["id"])
