"""An attacker's walk through the dashboard: a member signed in tries to reach objects marked
for a smaller audience by every route (pages, JSON twins, search, counts, graph, error pages)
and through objects it may see that point at ones it may not."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient

from shieldwall.assess.consultation import DEFAULT_POLICY, store_policy
from shieldwall.policy import member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.store import Provenance, Store
from tests.web.seed import Seeded, indicator, sighting
from tests.web.test_auth_policy import D, sign_in

RED_VALUE = "192.0.2.199"
RED_NAME = "Crimson relay"
STRICT_NAME = "Strict-only loader"
GRANULAR_SECRET = "named source inside the ministry"
HIDDEN_CAMPAIGN = "Operation Redwing"
HIDDEN_ACTOR = "Sandstorm Unit"


def _mark(obj: dict[str, Any], level: TLP, audience: list[str]) -> dict[str, Any]:
    return {**obj, "object_marking_refs": [tlp_marking_ref(level)], AUDIENCE_PROPERTY: audience}


def _rel(kind: str, src: str, dst: str, level: TLP, **extra: Any) -> dict[str, Any]:
    ts = format_ts(now_us())
    return {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
            "created": ts, "modified": ts, "relationship_type": kind, "source_ref": src,
            "target_ref": dst, "object_marking_refs": [tlp_marking_ref(level)], **extra}


def plant(store: Store, s: Seeded) -> dict[str, str]:
    """RED and AMBER+STRICT intelligence for latvia alone, and GREEN objects pointing at it."""
    red = _mark(indicator(RED_NAME, RED_VALUE, TLP.RED, "latvia"), TLP.RED, ["latvia"])
    strict = _mark(indicator(STRICT_NAME, "192.0.2.200", TLP.AMBER_STRICT, "latvia"),
                   TLP.AMBER_STRICT, ["latvia"])
    # GREEN as a whole, but its description is TLP:RED (granular marking).
    granular = dict(indicator("Granular lure", "192.0.2.201", TLP.GREEN, "latvia"),
                    description=GRANULAR_SECRET,
                    granular_markings=[{"marking_ref": tlp_marking_ref(TLP.RED),
                                        "selectors": ["description"]}])
    ts = format_ts(now_us())
    campaign = _mark({"type": "campaign", "spec_version": "2.1", "id": f"campaign--{uuid.uuid4()}",
                      "created": ts, "modified": ts, "name": HIDDEN_CAMPAIGN}, TLP.RED,
                     ["latvia"])
    # GREEN objects that point at the hidden ones.
    seen_red = sighting(red, "latvia", TLP.GREEN, now_us(), value=RED_VALUE)
    seen_red["x_shieldwall_explanation"] = []  # the value stays in the RED indicator only
    to_hidden = _rel("indicates", s.green_indicator, campaign["id"], TLP.GREEN)
    into_graph = _rel("related-to", campaign["id"], s.green_campaign, TLP.GREEN)
    actor = _mark({"type": "intrusion-set", "spec_version": "2.1",
                   "id": f"intrusion-set--{uuid.uuid4()}", "created": ts, "modified": ts,
                   "name": HIDDEN_ACTOR}, TLP.RED, ["latvia"])
    attributed = _rel("attributed-to", s.green_campaign, actor["id"], TLP.GREEN, confidence=80)
    result = store.put_many([red, strict, granular, campaign, seen_red, to_hidden, into_graph,
                             actor, attributed], Provenance("latvia", "taxii"))
    assert result.stored == 9, result.rejected
    return {"red": red["id"], "strict": strict["id"], "granular": granular["id"],
            "campaign": campaign["id"], "sighting": seen_red["id"], "actor": actor["id"]}


SECRETS = (RED_VALUE, RED_NAME, STRICT_NAME, GRANULAR_SECRET, HIDDEN_CAMPAIGN, HIDDEN_ACTOR)


def _pages(s: Seeded, ids: dict[str, str]) -> list[str]:
    return ["/", "/intel", f"/intel?q={RED_VALUE}", "/intel?tlp=red", "/intel?tlp=amber%2Bstrict",
            f"/intel?q={RED_NAME}", "/sightings", "/campaigns", "/incidents", "/hygiene",
            "/api/overview", "/api/indicators", f"/api/indicators?q={RED_VALUE}",
            "/api/indicators?tlp=red", "/api/sightings", "/api/timeline", "/api/campaigns",
            "/api/incidents", "/api/hygiene", f"/objects/{s.green_indicator}",
            f"/api/objects/{s.green_indicator}", f"/objects/{s.green_campaign}",
            f"/api/objects/{s.green_campaign}", f"/objects/{ids['sighting']}",
            f"/api/objects/{ids['sighting']}"]


def test_ally_outside_the_audience_reaches_nothing_by_any_route(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    store, s = seeded
    sign_in(client, "ana", s.passwords["ana"])  # estonia: an ally, but not named
    before = client.get(f"{D}/api/overview").json()
    ids = plant(store, s)
    for key in ("red", "strict", "granular", "campaign", "actor"):
        for path in (f"/objects/{ids[key]}", f"/api/objects/{ids[key]}"):
            assert client.get(f"{D}{path}").status_code == 404, (key, path)
    for path in _pages(s, ids):
        resp = client.get(f"{D}{path}")
        assert resp.status_code == 200, path
        body = re.sub(r'<form class="filters".*?</form>', "", resp.text, flags=re.S)
        # The ids of the RED indicator and campaign may appear: GREEN objects (a sighting,
        # a relationship) name them; their content and a link to them may not.
        for secret in (*SECRETS, ids["strict"], ids["granular"]):
            assert secret not in body, (path, secret)
        for hidden in (ids["red"], ids["campaign"], ids["actor"]):
            assert f'objects/{hidden}"' not in body, path
    after = client.get(f"{D}/api/overview").json()
    # Counts agree: planting hidden indicators changed nothing; the GREEN sighting counts.
    assert after["total_indicators"] == before["total_indicators"]
    assert after["total_sightings"] == before["total_sightings"] + 1
    assert client.get(f"{D}/api/indicators", params={"tlp": "red"}).json()["count"] == 0


def test_hidden_id_and_unknown_id_answer_alike(client: TestClient,
                                               seeded: tuple[Store, Seeded]) -> None:
    """404 for both, the same body: the error page confirms no hidden object's existence."""
    store, s = seeded
    ids = plant(store, s)
    sign_in(client, "pat", s.passwords["pat"])
    unknown = f"indicator--{uuid.uuid4()}"
    for route in ("/objects/", "/api/objects/"):
        hidden = client.get(f"{D}{route}{ids['red']}")
        absent = client.get(f"{D}{route}{unknown}")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.text.replace(ids["red"], "X") == absent.text.replace(unknown, "X")


def test_named_member_sees_what_was_named_to_it(client: TestClient,
                                                seeded: tuple[Store, Seeded]) -> None:
    """The other side of the rule, so the tests above cannot pass by hiding everything."""
    from shieldwall.web import create_user

    store, s = seeded
    ids = plant(store, s)
    password = create_user(store, "lia", "latvia", "analyst")
    sign_in(client, "lia", password)
    for key in ("red", "strict", "campaign"):
        assert client.get(f"{D}/objects/{ids[key]}").status_code == 200, key
    assert client.get(f"{D}/api/indicators", params={"q": RED_VALUE}).json()["count"] == 1
    assert GRANULAR_SECRET in client.get(f"{D}/objects/{ids['granular']}").text


def test_pointers_from_visible_objects_show_no_content_of_hidden_ones(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    store, s = seeded
    ids = plant(store, s)
    sign_in(client, "pat", s.passwords["pat"])
    page = client.get(f"{D}/objects/{ids['sighting']}").text
    assert "an indicator not shared with you" in page
    assert RED_NAME not in page and RED_VALUE not in page
    assert f'href="{D}/objects/{ids["red"]}"' not in page  # no link to follow
    indicator_page = client.get(f"{D}/objects/{s.green_indicator}").text
    assert "(not shared with you)" in indicator_page and HIDDEN_CAMPAIGN not in indicator_page
    graph = client.get(f"{D}/objects/{s.green_campaign}").text
    svg = re.search(r"<svg.*?</svg>", graph, flags=re.S)
    assert svg is not None and ids["campaign"] not in svg.group(0)


def _consultation(html: str) -> str:
    m = re.search(r'<section aria-labelledby="consult-h">.*?</section>', html, flags=re.S)
    return m.group(0) if m else ""


def _score(store: Store, s: Seeded) -> None:
    camp = store.get(s.green_campaign)
    assert camp is not None
    store.put(dict(camp.obj(), modified=format_ts(camp.version_us + 1_000),
                   x_shieldwall_members=["estonia", "latvia", "partnerland"],
                   x_shieldwall_severity={"score": 90.0, "level": "Critical",
                                          "members": ["estonia", "latvia", "partnerland"],
                                          "sector_names": ["energy", "health"]}),
              Provenance("estonia", "local"))


def test_consultation_is_shown_only_to_a_member_the_policy_names(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    """The node's own member delivered the policy, but a policy naming only the cell is
    not for its users."""
    store, s = seeded
    store_policy(store, replace(DEFAULT_POLICY, readers=("coordination-cell",)),
                 cell="estonia", created_by_ref=member_identity_id("estonia"))
    _score(store, s)
    sign_in(client, "ana", s.passwords["ana"])
    page = client.get(f"{D}/objects/{s.green_campaign}").text
    assert "Consultation" not in page and "min_severity" not in page
    assert _consultation(page) == ""


def test_consultation_facts_count_only_attributions_the_reader_may_see(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    store, s = seeded
    store_policy(store, replace(DEFAULT_POLICY, readers=("estonia",)), cell="estonia",
                 created_by_ref=member_identity_id("estonia"))
    _score(store, s)
    ts = format_ts(now_us())
    actor = _mark({"type": "intrusion-set", "spec_version": "2.1",
                   "id": f"intrusion-set--{uuid.uuid4()}", "created": ts, "modified": ts,
                   "name": "Sandstorm"}, TLP.RED, ["latvia"])
    hidden = _mark(_rel("attributed-to", s.green_campaign, actor["id"], TLP.RED,
                        confidence=97), TLP.RED, ["latvia"])
    store.put_many([actor, hidden], Provenance("latvia", "taxii"))
    sign_in(client, "ana", s.passwords["ana"])
    section = _consultation(client.get(f"{D}/objects/{s.green_campaign}").text)
    assert "attribution confidence" in section
    assert "0.97" not in section
    assert "convene-consultation</strong>" not in section  # the hidden 0.97 met its bar


def test_policy_object_itself_stays_with_the_roles_it_names(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    """The policy's id is derived from the cell's name, so anyone can ask for it by id."""
    from shieldwall.assess.consultation import policy_id

    store, s = seeded
    store_policy(store, replace(DEFAULT_POLICY, readers=("coordination-cell",)),
                 cell="estonia", created_by_ref=member_identity_id("estonia"))
    sign_in(client, "ana", s.passwords["ana"])  # a user of the node's own member
    for route in ("/objects/", "/api/objects/"):
        resp = client.get(f"{D}{route}{policy_id('estonia')}")
        assert resp.status_code == 404, route
        assert "min_severity" not in resp.text
    never = client.get(f"{D}/objects/{policy_id('other-cell')}")  # never stored
    assert never.text.replace(policy_id("other-cell"), "X") == client.get(
        f"{D}/objects/{policy_id('estonia')}").text.replace(policy_id("estonia"), "X")


def test_a_sharing_group_opens_amber_to_a_partner_and_nothing_above(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    """`group:NAME` in an audience reaches a partner in the group at AMBER; AMBER+STRICT and
    RED need the member's own name."""
    from shieldwall.policy import Members

    store, s = seeded
    Members(store.engine).join("partnerland", "baltic")
    objs = {level: _mark(indicator(f"group {level.short}", f"192.0.2.{10 + int(level)}", level,
                                   "latvia"), level, ["group:baltic"])
            for level in (TLP.AMBER, TLP.AMBER_STRICT, TLP.RED)}
    store.put_many(list(objs.values()), Provenance("latvia", "taxii"))
    sign_in(client, "pat", s.passwords["pat"])  # a partner in the group
    codes = {level: client.get(f"{D}/api/objects/{o['id']}").status_code
             for level, o in objs.items()}
    assert codes == {TLP.AMBER: 200, TLP.AMBER_STRICT: 404, TLP.RED: 404}
    names = {r["name"] for r in client.get(f"{D}/api/indicators").json()["indicators"]}
    assert "group amber" in names and not names & {"group amber+strict", "group red"}
