"""The Hygiene page shows each member's Pledge posture to the members it was shared with:
a member its own, the cell (named in the audience) every member that shared with it,
nobody an AMBER+STRICT snapshot that does not name it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from shieldwall.pledge.posture import compute, score_assessment, to_stix
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from shieldwall.web import create_user
from tests.web.seed import Seeded
from tests.web.test_auth_policy import D, sign_in


def snap(member: str, date: str, patches: float, tlp: TLP = TLP.AMBER_STRICT,
         audience: list[str] | None = None, cis: bool = False) -> dict[str, Any]:
    assessment = score_assessment({"5.2": "implemented on all systems",
                                   "14.1": "implemented on most systems"}) if cis else None
    return to_stix(compute(member, {"patches": {"score": patches}}, assessment, date=date),
                   tlp, audience)


def seed_postures(store: Store) -> None:
    # The node belongs to "estonia" (see conftest), here acting as the coordination cell.
    store.put_many([snap("estonia", "2025-06-01", 0.5), snap("estonia", "2026-01-01", 0.7)],
                   Provenance("estonia", "pledge"))
    store.put_many([snap("latvia", "2025-01-01", 0.4, audience=["estonia"]),
                    snap("latvia", "2026-01-01", 0.9, audience=["estonia"], cis=True)],
                   Provenance("latvia", "taxii"))
    # shared with a cell that is not this node's member: nobody here but its producer sees it
    store.put_many([snap("lithuania", "2026-01-01", 0.3, audience=["coordination-cell"])],
                   Provenance("lithuania", "taxii"))
    # a member that chose GREEN: everyone sees it
    store.put_many([snap("finland", "2026-01-01", 0.8, tlp=TLP.GREEN)],
                   Provenance("finland", "taxii"))


def members_seen(client: TestClient) -> tuple[str, dict[str, Any]]:
    page = client.get(f"{D}/hygiene")
    assert page.status_code == 200
    api = client.get(f"{D}/api/hygiene")
    assert api.status_code == 200
    return page.text, {m["member"]: m for m in api.json()["members"]}


def test_cell_sees_every_member_that_shared_with_it(
    client: TestClient, seeded: tuple[Store, Seeded]
) -> None:
    store, s = seeded
    seed_postures(store)
    sign_in(client, "ana", s.passwords["ana"])
    html, data = members_seen(client)
    assert set(data) == {"estonia", "latvia", "finland"}
    latvia = data["latvia"]
    assert latvia["date"] == "2026-01-01" and latvia["tlp"] == "TLP:AMBER+STRICT"
    assert [t["index"] for t in latvia["trend"]] == [40.0, latvia["index"]]
    assert latvia["delta"] == round(latvia["index"] - 40.0, 1)
    by_id = {c["id"]: c for c in latvia["commitments"]}
    assert set(by_id) == {"hygiene", "defend-networks", "education", "understanding-threats"}
    assert by_id["education"]["score"] is not None and by_id["education"]["score"] > 0
    assert [t["index"] for t in data["estonia"]["trend"]] == [50.0, 70.0]
    for member in ("estonia", "latvia", "finland"):
        assert f'data-member="{member}"' in html
    assert "lithuania" not in html
    assert "Cyber education, training and awareness" in html
    assert "2025-01-01" in html  # latvia's earlier snapshot, in its trend
    assert f'href="{D}/hygiene" aria-current="page"' in html  # the nav link


def test_others_see_only_their_own_and_what_names_them(
    client: TestClient, seeded: tuple[Store, Seeded]
) -> None:
    store, s = seeded
    seed_postures(store)
    lia = create_user(store, "lia", "latvia", "analyst")
    sign_in(client, "lia", lia)  # an ally: its own snapshots, not the cell's
    html, data = members_seen(client)
    assert set(data) == {"latvia", "finland"}
    assert 'data-member="estonia"' not in html and "lithuania" not in html
    client.cookies.clear()

    sign_in(client, "pat", s.passwords["pat"])  # a partner: only what is open to it
    html, data = members_seen(client)
    assert set(data) == {"finland"}
    for hidden in ("estonia", "latvia", "lithuania"):
        assert f'data-member="{hidden}"' not in html and hidden not in str(data)
    client.cookies.clear()


def test_hygiene_needs_a_session(client: TestClient) -> None:
    assert client.get(f"{D}/api/hygiene").status_code == 401
    page = client.get(f"{D}/hygiene", follow_redirects=False)
    assert page.status_code == 303 and "/login" in page.headers["location"]
