"""Sign-in attacks on the dashboard: guessing, session fixation, forged and stale cookies,
and cross-site requests that change state."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shieldwall.store import Store
from shieldwall.web.users import Users
from tests.web.seed import Seeded
from tests.web.test_auth_policy import D, csrf_of, sign_in


def _try(client: TestClient, user: str, password: str) -> int:
    page = client.get(f"{D}/login")
    return client.post(f"{D}/login", data={"username": user, "password": password,
                                           "csrf": csrf_of(page.text)},
                       follow_redirects=False).status_code


def test_guessing_locks_the_address_out_even_for_the_right_password(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    s = seeded[1]
    for i in range(10):
        assert _try(client, "ana", f"guess-{i}") == 401
    page = client.get(f"{D}/login")
    resp = client.post(f"{D}/login", data={"username": "ana", "password": s.passwords["ana"],
                                            "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert resp.status_code == 401 and "Too many failed sign-ins" in resp.text
    assert "sw_session" not in resp.cookies


def test_unknown_users_count_as_failures_too(client: TestClient) -> None:
    for i in range(10):
        assert _try(client, f"nobody{i}", "x") == 401
    assert "Too many failed sign-ins" in client.post(
        f"{D}/login", data={"username": "ana", "password": "x",
                            "csrf": csrf_of(client.get(f"{D}/login").text)}).text


def test_sign_in_issues_a_new_session_whatever_cookie_was_planted(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    """Session fixation: a cookie planted before sign-in (the attacker's own, valid session)
    is replaced, and the planted session stays the attacker's, not the victim's."""
    s = seeded[1]
    sign_in(client, "pat", s.passwords["pat"])
    planted = client.cookies.get("sw_session")
    assert planted
    sign_in(client, "ana", s.passwords["ana"])  # the victim signs in in the same browser
    mine = client.cookies.get("sw_session")
    assert mine and mine != planted
    assert "AMBER" in client.get(f"{D}/api/indicators").text  # ana, an ally
    attacker = TestClient(client.app, base_url="http://127.0.0.1")
    attacker.cookies.set("sw_session", planted, path="/dashboard")
    assert "TLP:AMBER" not in attacker.get(f"{D}/api/indicators").text  # still pat's view


def test_forged_and_stale_cookies_are_refused(client: TestClient,
                                              seeded: tuple[Store, Seeded]) -> None:
    store, s = seeded
    sign_in(client, "pat", s.passwords["pat"])
    good = client.cookies.get("sw_session")
    assert good and client.get(f"{D}/api/overview").status_code == 200
    sid, _, sig = good.rpartition(".")
    for forged in (sid + "x." + sig, sid + "." + sig[::-1], "ana", sid):
        client.cookies.set("sw_session", forged, path="/dashboard")
        assert client.get(f"{D}/api/overview").status_code == 401, forged
    client.cookies.set("sw_session", good, path="/dashboard")
    Users(store.engine).remove("pat")  # removing the user ends its sessions at once
    assert client.get(f"{D}/api/overview").status_code == 401


def test_every_state_changing_route_checks_a_csrf_token(client: TestClient,
                                                        seeded: tuple[Store, Seeded]) -> None:
    """The dashboard's only POSTs are sign-in and sign-out; both refuse a forged token. A new
    state-changing route fails this test until it is added here with its CSRF check."""
    from starlette.routing import Mount

    dashboard = next(r.app for r in client.app.routes  # type: ignore[attr-defined]
                     if isinstance(r, Mount) and r.path == D)
    changing = sorted(r.path for r in dashboard.routes
                      if set(getattr(r, "methods", ()) or ()) - {"GET", "HEAD"})
    assert changing == ["/login", "/logout"]
    sign_in(client, "ana", seeded[1].passwords["ana"])
    for path in changing:
        resp = client.post(f"{D}{path}", data={"csrf": "forged", "username": "ana",
                                                "password": seeded[1].passwords["ana"]},
                           follow_redirects=False)
        assert resp.status_code == 403, path
    assert client.get(f"{D}/api/overview").status_code == 200  # still signed in
