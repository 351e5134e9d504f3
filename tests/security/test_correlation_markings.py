"""Candidate campaigns carry what they were built from: never at a wider TLP than their inputs.

`publish_campaigns` writes the campaign, with the members hit, the ids it groups and the
shared values (`x_shieldwall_evidence`) on its `related-to` links. When those inputs are
TLP:RED for one member, a campaign marked TLP:AMBER hands them to every ally by TAXII,
federation and the dashboard.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from shieldwall.assess.correlation import Correlator, publish_campaigns
from shieldwall.policy import Member, member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for

SECRET_IP = "192.0.2.231"


def _red(obj: dict[str, Any], audience: list[str]) -> dict[str, Any]:
    return {**obj, "object_marking_refs": [tlp_marking_ref(TLP.RED)], AUDIENCE_PROPERTY: audience}


def _indicator() -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
            "pattern": f"[ipv4-addr:value = '{SECRET_IP}']", "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z"}


def _sighting(member: str, indicator_id: str) -> dict[str, Any]:
    ident = member_identity_id(member)
    ts = "2026-01-02T00:00:00Z"
    return {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
            "created": ts, "modified": ts, "created_by_ref": ident,
            "sighting_of_ref": indicator_id, "where_sighted_refs": [ident],
            "first_seen": ts, "last_seen": ts, "count": 1}


def test_campaign_from_red_inputs_reaches_no_ally_outside_their_audience(
        tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'cell.db'}")
    try:
        a, b = _red(_indicator(), ["latvia", "cell"]), _red(_indicator(), ["estonia", "cell"])
        sightings = [_red(_sighting("latvia", a["id"]), ["latvia", "cell"]),
                     _red(_sighting("estonia", b["id"]), ["estonia", "cell"])]
        store.put_many([a, b, *sightings], Provenance("cell", "taxii"))
        corr = Correlator(store)
        corr.add_many(sightings, members={sightings[0]["id"]: "latvia",
                                          sightings[1]["id"]: "estonia"})
        published = publish_campaigns(store, corr, member="cell",
                                      created_by_ref=member_identity_id("cell"))
        assert published, "the two sightings share an address: one candidate campaign"
        outsider = access_for(Member("lithuania", "ally"))  # an ally neither input names
        seen = [r.json for r in store.iter_query(Query(access=outsider))]
        leaked = [j for j in seen if SECRET_IP in j or sightings[0]["id"] in j]
        assert leaked == [], f"{len(leaked)} objects hand TLP:RED inputs to lithuania"
    finally:
        store.close()
