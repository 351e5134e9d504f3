"""A sighting the node makes carries what it matched: the pattern, the atom and the value in
`x_shieldwall_explanation`, the value again in its observed-data. Made at the node's fixed
`sighting_tlp`, a sighting of a TLP:RED indicator hands the RED value to every ally."""

from __future__ import annotations

import uuid
from pathlib import Path

from shieldwall.detect.sightings import Hit, Sightings
from shieldwall.policy import Member, member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.stix.timestamps import now_us
from shieldwall.store import Provenance, Query, Store
from shieldwall.store.audience import stored_marking
from shieldwall.taxii.app import access_for

RED_VALUE = "192.0.2.77"


def test_sighting_of_a_red_indicator_is_no_wider_than_the_indicator(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'estonia.db'}")
    try:
        pattern = f"[ipv4-addr:value = '{RED_VALUE}']"
        red = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
               "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
               "name": "named to estonia only", "pattern": pattern, "pattern_type": "stix",
               "valid_from": "2026-01-01T00:00:00Z",
               "object_marking_refs": [tlp_marking_ref(TLP.RED)],
               AUDIENCE_PROPERTY: ["estonia"]}
        store.put(red, Provenance("latvia", "taxii"))
        ts = now_us()
        observed = {"first_observed": "2026-01-02T00:00:00.000Z",
                    "last_observed": "2026-01-02T00:00:00.000Z", "number_observed": 1,
                    "objects": {"0": {"type": "ipv4-addr", "value": RED_VALUE}}}
        sightings = Sightings(member_identity_id("estonia"), TLP.AMBER,  # the default floor
                              marking_of=stored_marking(store), member="estonia")
        sightings.add(Hit(red["id"], red["name"], pattern, ts, observed,
                          f"ipv4-addr:value = '{RED_VALUE}'", "id.resp_h", RED_VALUE,
                          "conn.log", 1))
        store.put_many(sightings.objects(), Provenance("estonia", "detect"))
        lithuania = access_for(Member("lithuania", "ally"))
        leaked = [r.type for r in store.iter_query(Query(access=lithuania)) if RED_VALUE in r.json]
        assert leaked == [], f"lithuania reads the RED value in: {leaked}"
        estonia = access_for(Member("estonia", "ally"))
        latvia = access_for(Member("latvia", "ally"))
        for reader in (estonia, latvia):  # the sighter, and the indicator's producer
            kinds = {r.type for r in store.iter_query(Query(access=reader))
                     if RED_VALUE in r.json}
            assert {"sighting", "ipv4-addr"} <= kinds
    finally:
        store.close()
