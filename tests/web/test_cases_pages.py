"""The dashboard's rapid-reaction pages: assistance requests, the case list, the case page,
and the blind-hit badge on sightings; each reader sees what its `Access` gives it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from shieldwall.config import init_home, load_config
from shieldwall.store import Store
from shieldwall.taxii.app import Settings, access_for, create_app
from shieldwall.web import cases as case_pages
from shieldwall.web import mount
from tests.web import test_browser
from tests.web.case_seed import (
    CELL,
    EAST_CASE,
    EVENT_TIMES,
    HOSTILE,
    STRICT_TASK,
    CaseSeed,
    seed_cases,
)
from tests.web.test_auth_policy import sign_in
from tests.web.test_browser import ARTIFACTS, CHROMIUM, Node

D = "/dashboard"
browser = test_browser.browser  # the browser tests' fixtures (Debian's Chromium), by name
page = test_browser.page


@pytest.fixture
def seeded_cases(store: Store, tmp_path: Path) -> CaseSeed:
    return seed_cases(store, tmp_path / "keys")


@pytest.fixture
def app_client(store: Store, seeded_cases: CaseSeed) -> Iterator[TestClient]:
    app = create_app(store, Settings(node_member=CELL))
    mount(app, store, access_for, node_member=CELL)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def as_user(client: TestClient, seed: CaseSeed, user: str) -> TestClient:
    sign_in(client, user, seed.passwords[user])
    return client


def test_cell_sees_every_request_addressed_to_it(app_client: TestClient,
                                                 seeded_cases: CaseSeed) -> None:
    c = as_user(app_client, seeded_cases, "cora")
    page = c.get(f"{D}/assistance")
    assert page.status_code == 200
    rows = re.findall(r'data-request="([^"]+)"', page.text)
    assert rows == [seeded_cases.request_id, seeded_cases.east_request_id]
    south = page.text.split(f'data-request="{seeded_cases.request_id}"')[1].split("</tr>")[0]
    assert "dispatched" in south and "cert-north:alice, cert-north:bob" in south
    east = page.text.split(f'data-request="{seeded_cases.east_request_id}"')[1]
    assert "awaiting dispatch" in east.split("</tr>")[0]
    assert 'href="/dashboard/assistance"' in page.text  # in the navigation
    listing = c.get(f"{D}/cases")
    assert re.findall(r'data-case="([^"]+)"', listing.text) == [seeded_cases.case_id,
                                                                seeded_cases.east_case_id]


@pytest.mark.parametrize("user, sees", [("sam", True), ("cora", True), ("nia", True),
                                        ("eve", False), ("pat", False), ("olga", False)])
def test_case_page_only_for_its_audience(app_client: TestClient, seeded_cases: CaseSeed,
                                         user: str, sees: bool) -> None:
    c = as_user(app_client, seeded_cases, user)
    page = c.get(f"{D}/cases/{seeded_cases.case_id}")
    never = c.get(f"{D}/cases/incident--00000000-0000-4000-8000-000000000000")
    assert never.status_code == 404
    listing = c.get(f"{D}/cases").text
    requests = c.get(f"{D}/assistance").text
    if sees:
        assert page.status_code == 200
        assert seeded_cases.case_id in listing and seeded_cases.request_id in requests
    else:
        # neither the case nor its existence: the same 404 as a case that never was
        assert page.status_code == 404
        assert page.text.replace(seeded_cases.case_id, "X") == never.text.replace(
            "incident--00000000-0000-4000-8000-000000000000", "X")
        assert seeded_cases.case_id not in listing
        assert seeded_cases.request_id not in requests
    # cert-east's case: the cell and cert-east only
    east = c.get(f"{D}/cases/{seeded_cases.east_case_id}")
    assert (east.status_code == 200) == (user in ("cora", "eve"))
    assert (EAST_CASE in listing) == (user in ("cora", "eve"))


def test_items_follow_their_own_tlp(app_client: TestClient, seeded_cases: CaseSeed) -> None:
    """The team member reads the case but not the task named to south and the cell only."""
    for user, strict in (("sam", True), ("cora", True), ("nia", False)):
        c = as_user(app_client, seeded_cases, user)
        page = c.get(f"{D}/cases/{seeded_cases.case_id}").text
        assert (STRICT_TASK in page) == strict, user
        assert (seeded_cases.strict_task in page) == strict, user
        assert "Collect firewall logs" in page  # GREEN: everyone on the page


def test_case_page_shows_status_board_timeline_evidence(app_client: TestClient,
                                                       seeded_cases: CaseSeed) -> None:
    c = as_user(app_client, seeded_cases, "nia")
    page = c.get(f"{D}/cases/{seeded_cases.case_id}").text
    # status: investigation, request and dispatch
    assert re.search(r'id="investigation">open<', page)
    assert "cert-north:alice, cert-north:bob" in page
    # tasks in their columns
    for key, status in (("task-script", "ongoing"), ("task-green", "successful"),
                        ("task-amber", "failed"), ("task-pending", "pending")):
        col = page.split(f'data-status="{status}"')[1].split("</section>")[0]
        assert seeded_cases.items[key]["id"] in col, (key, status)
    # the timeline by time, whatever order the events were given in, with fidelity
    names = re.findall(r'<span class="ename">([^<]+)</span>', page)
    given = [n for n, _, _ in EVENT_TIMES]
    by_time = [n for n, _, _ in sorted(EVENT_TIMES, key=lambda e: e[1])]
    assert [n for n in names if n in given] == by_time
    times = [int(t) for t in re.findall(r'class="tevent" data-event="[^"]+" data-time="(\d+)"',
                                        page)]
    assert times == sorted(times) and len(times) == len(EVENT_TIMES) + 1
    assert "to the hour" in page and "to the minute" in page
    # evidence, custody and verification: the changed item is flagged, the other verified
    assert 'id="verification" class="failed"' in page
    changed = page.split(f'data-evidence="{seeded_cases.changed_evidence}"')[1]
    assert "changed" in changed.split("</article>")[0]
    good = page.split(f'data-evidence="{seeded_cases.good_evidence}"')[1].split("</article>")[0]
    assert "verified" in good and "handed-over" in good and "collected" in good
    # observables and their recorded hunt result
    obs = page.split('id="observables"')[1].split("</table>")[0]
    assert "ipv4-addr:203.0.113.9" in obs and "seen 4x" in obs
    # a TLP badge on every item shown
    assert page.count('class="tlp ') >= 4 + 5 + 2 + 3 + 1 + 1


def test_hostile_text_is_escaped_everywhere(app_client: TestClient,
                                            seeded_cases: CaseSeed) -> None:
    c = as_user(app_client, seeded_cases, "cora")
    for path in (f"/cases/{seeded_cases.case_id}", "/cases", "/assistance"):
        page = c.get(D + path).text
        assert HOSTILE not in page, path
        assert "<script>alert" not in page, path
    page = c.get(f"{D}/cases/{seeded_cases.case_id}").text
    # escaped, not dropped: the task name, description, incident, evidence, source, note
    assert page.count(str(escape(HOSTILE))) >= 8


def test_paging_is_keyset_and_sealed(app_client: TestClient, seeded_cases: CaseSeed,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case_pages, "PAGE", 1)
    c = as_user(app_client, seeded_cases, "cora")
    first = c.get(f"{D}/cases").text
    assert re.findall(r'data-case="([^"]+)"', first) == [seeded_cases.case_id]
    nxt = re.search(r'rel="next" href="/dashboard/cases\?after=([^"]+)"', first)
    assert nxt
    second = c.get(f"{D}/cases?after={nxt.group(1)}").text
    assert re.findall(r'data-case="([^"]+)"', second) == [seeded_cases.east_case_id]
    assert 'rel="next"' not in second
    # a position sealed for the cell is not one for another member, nor for another page
    assert c.get(f"{D}/assistance?after={nxt.group(1)}").status_code == 400
    c.post(f"{D}/logout", data={"csrf": re.search(r'name="csrf" value="([^"]+)"',
                                                  first).group(1)})  # type: ignore[union-attr]
    c = as_user(app_client, seeded_cases, "eve")
    assert c.get(f"{D}/cases?after={nxt.group(1)}").status_code == 400


def test_blind_hit_badge_shows_owner_not_value(app_client: TestClient,
                                               seeded_cases: CaseSeed) -> None:
    c = as_user(app_client, seeded_cases, "sam")
    page = c.get(f"{D}/sightings").text
    row = page.split(f'data-sighting="{seeded_cases.blind_sighting}"')[1].split("</tr>")[0]
    assert "protected indicator of cert-north" in row
    assert "h-0f3a" not in page  # the handle stays in the stored object
    api = c.get(f"{D}/api/sightings")
    blind = [x for x in api.json()["sightings"] if x["id"] == seeded_cases.blind_sighting]
    assert [x["blind_owner"] for x in blind] == ["cert-north"]  # the live rows' badge
    assert "h-0f3a" not in api.text
    detail = c.get(f"{D}/objects/{seeded_cases.blind_sighting}").text
    assert "protected indicator of cert-north" in detail  # (its stored JSON is shown too)
    incident = c.get(f"{D}/objects/{seeded_cases.case_id}").text
    assert f'href="/dashboard/cases/{seeded_cases.case_id}"' in incident
    c = as_user(app_client, seeded_cases, "eve")
    assert seeded_cases.blind_sighting not in c.get(f"{D}/sightings").text


def test_case_reads_are_bounded(store: Store, seeded_cases: CaseSeed) -> None:
    """The case list and the case page read with a fixed number of queries, however many
    items: counted at the database, with twice the events the second time."""
    from sqlalchemy import event as sa_event

    from shieldwall.policy import Member
    from shieldwall.respond.assist import list_requests
    from shieldwall.respond.cases import load_case
    from shieldwall.respond.model import Marking, event, link
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Provenance
    from tests.web.case_seed import AUDIENCE, NORTH

    access = access_for(Member(CELL, "ally"))
    count = [0]

    def on_exec(*_a: object, **_k: object) -> None:
        count[0] += 1

    def reads() -> int:
        count[0] = 0
        sa_event.listen(store.engine, "before_cursor_execute", on_exec)
        try:
            views = list_requests(store, access, limit=51, with_campaigns=False)
            case_pages.case_rows(store, access, views)
            case_pages.case_context(store, seeded_cases.case_id, access)
        finally:
            sa_event.remove(store.engine, "before_cursor_execute", on_exec)
        return count[0]

    before = reads()
    case = load_case(store, seeded_cases.case_id, access)
    more = []
    for i in range(40):
        e = event(creator=NORTH, name=f"more {i}", marking=Marking(TLP.AMBER_STRICT, AUDIENCE),
                  start=f"2026-12-02T10:{i:02d}:00.000Z")
        more += [e, link(e, case.id)]
    store.put_many(more, Provenance(NORTH, "taxii"))
    assert reads() == before
    assert before < 40


# ---- in a browser: Debian's Chromium (Playwright) against a real `shieldwall serve` --------


@pytest.fixture(scope="module")
def case_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, CaseSeed]]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/ensure-test-deps.sh installs Debian's "
                    "chromium)")
    home = tmp_path_factory.mktemp("web-cases") / "node"
    init_home(home, CELL)
    store = Store.open(load_config(home).db_url)
    try:
        seeded = seed_cases(store, home.parent / "south-keys")
    finally:
        store.close()
    node = Node(home, None)  # type: ignore[arg-type]
    node.start()
    yield node, seeded
    node.stop()


@pytest.mark.browser
@pytest.mark.xdist_group("web-browser")
def test_case_page_in_a_browser(case_server: tuple[Node, CaseSeed], page: object) -> None:
    from playwright.sync_api import expect

    node, seeded = case_server
    p: Any = page
    errors: list[str] = []
    failed: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
         else None)
    p.goto(node.url + "/login")
    p.get_by_label("User name").fill("cora")
    p.get_by_label("Password").fill(seeded.passwords["cora"])
    p.get_by_role("button", name="Sign in").click()
    p.wait_for_url(node.url + "/")
    p.get_by_role("link", name="Assistance").click()
    expect(p.locator("#requests tbody tr")).to_have_count(2)
    p.get_by_role("link", name="Cases", exact=True).click()
    p.locator(f'tr[data-case="{seeded.case_id}"] a').click()
    p.wait_for_load_state("networkidle")
    expect(p.locator("#investigation")).to_have_text("open")
    expect(p.locator('[data-status="ongoing"] .tname')).to_have_text(HOSTILE)  # as text
    events = p.locator("#timeline-events li.tevent")
    expect(events).to_have_count(len(EVENT_TIMES) + 1)
    times = [int(t) for t in events.evaluate_all("els => els.map(e => e.dataset.time)")]
    tops = events.evaluate_all("els => els.map(e => e.getBoundingClientRect().top)")
    names = events.locator(".ename").all_text_contents()
    by_time = [n for n, _, _ in sorted(EVENT_TIMES, key=lambda e: e[1])]
    assert times == sorted(times)
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    assert [n for n in names if n in by_time] == by_time
    ticks = p.locator(".axis .tick").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().left)")
    assert ticks == sorted(ticks) and ticks[0] < ticks[-1]
    expect(p.locator("#verification")).to_contain_text("Verification failed")
    expect(p.locator(f'[data-evidence="{seeded.changed_evidence}"] h3')).to_contain_text(
        "changed")
    assert p.evaluate("() => window.__sw_xss === undefined")
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "web-case.png"), full_page=True)
    assert errors == [] and failed == []


def test_malformed_stored_items_do_not_break_the_page(store: Store, app_client: TestClient,
                                                      seeded_cases: CaseSeed) -> None:
    """Items that reached the store before validation was what it is now (any shape of
    any property): the page still answers, and shows the rest."""
    from shieldwall.respond.model import link
    from shieldwall.store import Provenance
    from tests.web.case_seed import NORTH

    base = dict(seeded_cases.items["event-0"])
    odd_event = {**base, "id": "event--6f1c3f4e-2c7b-4bd4-9b3e-111111111111",
                 "start_time": 12345, "start_time_fidelity": ["x"], "name": ["not", "text"],
                 "sighting_refs": "sighting--nope", "x_shieldwall_observable_refs": 7}
    odd_task = {**seeded_cases.items["task-green"],
                "id": "task--6f1c3f4e-2c7b-4bd4-9b3e-222222222222", "outcome": 5,
                "priority": "high", "x_shieldwall_due": {"a": 1}}
    objs = [odd_event, link(odd_event, seeded_cases.case_id), odd_task,
            link(odd_task, seeded_cases.case_id)]
    result = store.put_many(objs, Provenance(NORTH, "taxii"))
    assert not result.rejected, result.rejected
    c = as_user(app_client, seeded_cases, "cora")
    page = c.get(f"{D}/cases/{seeded_cases.case_id}")
    assert page.status_code == 200
    assert odd_event["id"] in page.text and odd_task["id"] in page.text
    assert "Phishing mail opened" in page.text
