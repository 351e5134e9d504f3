"""The campaign page shows the cell's consultation recommendation to the cell only."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from shieldwall.assess.consultation import DEFAULT_POLICY, store_policy
from shieldwall.node import member_identity_id
from shieldwall.stix.timestamps import format_ts
from shieldwall.store import Provenance, Store
from shieldwall.web import create_user
from tests.web.seed import Seeded
from tests.web.test_auth_policy import D, sign_in

HEADING = "Consultation (coordination cell only)"


def test_cell_sees_recommendation_and_others_do_not(
    client: TestClient, seeded: tuple[Store, Seeded]
) -> None:
    store, s = seeded
    # The node belongs to member "estonia" (see conftest), here acting as the cell.
    store_policy(store, replace(DEFAULT_POLICY, readers=("estonia",)), cell="estonia",
                 created_by_ref=member_identity_id("estonia"))
    ally_password = create_user(store, "lia", "latvia", "analyst")
    camp = store.get(s.green_campaign)
    assert camp is not None
    scored = dict(camp.obj(), modified=format_ts(camp.version_us + 1_000),
                  x_shieldwall_members=["estonia", "latvia"],
                  x_shieldwall_severity={"score": 72.0, "level": "High",
                                         "members": ["estonia", "latvia"],
                                         "sector_names": ["energy"]})
    store.put(scored, Provenance("estonia", "local"))

    sign_in(client, "ana", s.passwords["ana"])
    page = client.get(f"{D}/objects/{s.green_campaign}")
    assert page.status_code == 200
    assert HEADING in page.text and "awaiting decision" in page.text
    assert "proportionality" in page.text and "No decision recorded yet" in page.text
    assert "Not assessed" in client.get(f"{D}/objects/{s.amber_campaign}").text
    client.post(f"{D}/logout", data={"csrf": ""})
    client.cookies.clear()

    for user, password in (("lia", ally_password), ("pat", s.passwords["pat"])):
        sign_in(client, user, password)
        page = client.get(f"{D}/objects/{s.green_campaign}")
        assert page.status_code == 200, user  # the GREEN campaign itself is shared
        assert HEADING not in page.text and "proportionality" not in page.text, user
        client.cookies.clear()


def test_campaign_page_shows_attribution_ranking_within_policy(
    client: TestClient, seeded: tuple[Store, Seeded]
) -> None:
    from shieldwall.assess.attribution import attribute, ranking_note
    from shieldwall.stix.markings import TLP, tlp_marking_ref

    store, s = seeded
    ranking = attribute(techniques=["T1210", "T1486", "T1490"], software=["S0366"])
    note = ranking_note(ranking, s.green_campaign,
                        marking_refs=[tlp_marking_ref(TLP.AMBER)])
    store.put(note, Provenance("estonia", "local"))
    lead = ranking.candidates[0]

    sign_in(client, "ana", s.passwords["ana"])  # estonia, an ally: AMBER is visible
    page = client.get(f"{D}/objects/{s.green_campaign}").text
    assert f"Attribution support: {ranking.verdict}" in page
    assert f"{lead.group} ({lead.attack_id})" in page and "not a statement of fact" in page
    client.cookies.clear()

    sign_in(client, "pat", s.passwords["pat"])  # a partner: the AMBER note stays hidden
    page = client.get(f"{D}/objects/{s.green_campaign}").text
    assert "Attribution support" not in page
