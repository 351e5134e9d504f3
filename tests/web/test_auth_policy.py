"""Sign-in, sessions, CSRF, and the member's TAXII view on every page and JSON endpoint."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from shieldwall.store import Store
from shieldwall.web.users import UserError, Users, check_password, hash_password
from tests.web.seed import SECRET_CAMPAIGN, SECRET_NAME, SECRET_VALUE, Seeded

D = "/dashboard"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the form"
    return m.group(1)


def sign_in(client: TestClient, user: str, password: str) -> None:
    page = client.get(f"{D}/login")
    resp = client.post(f"{D}/login", data={"username": user, "password": password,
                                           "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == f"{D}/"


def test_password_hash_round_trip() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$")
    assert check_password("correct horse", stored)
    assert not check_password("correct horsE", stored)


def test_user_needs_known_member_and_role(seeded: tuple[Store, Seeded]) -> None:
    store, _ = seeded
    users = Users(store.engine)
    with pytest.raises(UserError, match="no member"):
        users.add("x", "narnia", "analyst", frozenset({"estonia"}))
    with pytest.raises(UserError, match="unknown role"):
        users.add("x", "estonia", "admin", frozenset({"estonia"}))


def test_pages_need_sign_in(client: TestClient) -> None:
    resp = client.get(f"{D}/intel", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith(f"{D}/login?next=")
    assert client.get(f"{D}/api/overview").status_code == 401
    assert client.get(f"{D}/api/live").status_code == 401


def test_wrong_password_is_refused(client: TestClient) -> None:
    page = client.get(f"{D}/login")
    resp = client.post(f"{D}/login", data={"username": "ana", "password": "nope",
                                           "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert resp.status_code == 401
    assert "wrong password" in resp.text
    assert "sw_session" not in resp.cookies


def test_login_without_csrf_is_refused(client: TestClient, seeded: tuple[Store, Seeded]
                                       ) -> None:
    client.get(f"{D}/login")
    resp = client.post(f"{D}/login", data={"username": "ana",
                                           "password": seeded[1].passwords["ana"],
                                           "csrf": "forged"}, follow_redirects=False)
    assert resp.status_code == 403


def test_session_cookie_flags(client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    page = client.get(f"{D}/login")
    resp = client.post(f"{D}/login", data={"username": "ana",
                                           "password": seeded[1].passwords["ana"],
                                           "csrf": csrf_of(page.text)}, follow_redirects=False)
    cookie = next(v for k, v in resp.headers.multi_items()
              if k == "set-cookie" and v.startswith("sw_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/dashboard" in cookie


def test_logout_needs_csrf_and_ends_the_session(client: TestClient,
                                                 seeded: tuple[Store, Seeded]) -> None:
    sign_in(client, "ana", seeded[1].passwords["ana"])
    page = client.get(f"{D}/")
    assert page.status_code == 200
    cookie = client.cookies.get("sw_session")
    assert client.post(f"{D}/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get(f"{D}/api/overview").status_code == 200
    resp = client.post(f"{D}/logout", data={"csrf": csrf_of(page.text)},
                       follow_redirects=False)
    assert resp.status_code == 303
    # The old cookie, replayed, no longer works: the session is gone server-side.
    client.cookies.set("sw_session", cookie, path="/dashboard")
    assert client.get(f"{D}/api/overview").status_code == 401


def test_ally_sees_amber(client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    s = seeded[1]
    sign_in(client, "ana", s.passwords["ana"])
    assert SECRET_NAME in client.get(f"{D}/intel", params={"q": SECRET_VALUE}).text
    assert client.get(f"{D}/objects/{s.amber_indicator}").status_code == 200
    assert SECRET_CAMPAIGN in client.get(f"{D}/").text


def test_partner_sees_no_amber_anywhere(client: TestClient, seeded: tuple[Store, Seeded]
                                        ) -> None:
    s = seeded[1]
    sign_in(client, "pat", s.passwords["pat"])
    hidden = (s.amber_indicator, s.amber_sighting, s.amber_campaign)
    for stix_id in hidden:
        assert client.get(f"{D}/objects/{stix_id}").status_code == 404
        assert client.get(f"{D}/api/objects/{stix_id}").status_code == 404
    bodies = [client.get(f"{D}{p}").text for p in (
        "/", "/intel", f"/intel?q={SECRET_VALUE}", "/intel?tlp=amber", "/sightings",
        "/campaigns", "/incidents", "/api/overview", "/api/indicators",
        f"/api/indicators?q={SECRET_VALUE}", "/api/sightings", "/api/timeline",
        "/api/campaigns", f"/objects/{s.green_indicator}", f"/objects/{s.green_campaign}")]
    for body in bodies:
        # The search form echoes what the user typed; only the rest of the page counts.
        body = re.sub(r'<form class="filters".*?</form>', "", body, flags=re.S)
        for secret in (SECRET_VALUE, SECRET_NAME, SECRET_CAMPAIGN, *hidden):
            assert secret not in body
    overview = client.get(f"{D}/api/overview").json()
    # Counts agree with TAXII's view: 1 GREEN indicator, 2 GREEN sightings.
    assert overview["total_indicators"] == 1
    assert overview["total_sightings"] == 2
    assert client.get(f"{D}/api/indicators", params={"q": SECRET_VALUE}).json()["count"] == 0
    # The partner still sees what it may: the GREEN indicator and its sightings.
    green = client.get(f"{D}/api/objects/{s.green_indicator}").json()
    assert len(green["sightings"]) == 2


def test_sighting_page_explains_the_match(client: TestClient, seeded: tuple[Store, Seeded]
                                          ) -> None:
    s = seeded[1]
    sign_in(client, "ana", s.passwords["ana"])
    page = client.get(f"{D}/objects/{s.green_sighting}").text
    assert "Why it matched" in page
    assert "/var/log/zeek/latvia-conn.log:42" in page
    assert f'href="{D}/objects/{s.green_indicator}"' in page


def test_revoked_member_ends_access(client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    from shieldwall.policy import Members

    store, s = seeded
    sign_in(client, "pat", s.passwords["pat"])
    assert client.get(f"{D}/api/overview").status_code == 200
    Members(store.engine).revoke("partnerland")
    assert client.get(f"{D}/api/overview").status_code == 401


def test_next_cannot_leave_the_dashboard(client: TestClient, seeded: tuple[Store, Seeded]
                                         ) -> None:
    page = client.get(f"{D}/login", params={"next": "//evil.example/"})
    resp = client.post(f"{D}/login", data={
        "username": "ana", "password": seeded[1].passwords["ana"], "csrf": csrf_of(page.text),
        "next": "//evil.example/"}, follow_redirects=False)
    assert resp.headers["location"] == f"{D}/"


def test_security_headers(client: TestClient) -> None:
    resp = client.get(f"{D}/login")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY"


def test_incident_and_campaign_pages(client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    s = seeded[1]
    sign_in(client, "pat", s.passwords["pat"])
    assert "Latvian grid operator intrusion" in client.get(f"{D}/incidents").text
    page = client.get(f"{D}/objects/{s.green_campaign}").text
    assert "Severity of linked incidents" in page
    assert f"{D}/objects/{s.incident}" in page


def test_member_without_a_node_wide_collection_sees_nothing(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    from dataclasses import replace

    from shieldwall.policy import Members

    store, s = seeded
    reg = Members(store.engine)
    sign_in(client, "pat", s.passwords["pat"])
    assert client.get(f"{D}/api/overview").json()["total_indicators"] == 1
    for coll in reg.collections():  # TAXII would now refuse partners every node-wide read
        if coll.scope == "all":
            reg.set_collection(replace(coll, read_rule="tier:ally"), position=0)
    data = client.get(f"{D}/api/overview").json()
    assert data["total_indicators"] == 0 and data["total_sightings"] == 0
    assert client.get(f"{D}/objects/{s.green_indicator}").status_code == 404
