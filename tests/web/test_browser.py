"""End to end: Debian's Chromium (Playwright) against a real `shieldwall serve` process."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shieldwall.config import init_home, load_config
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from tests.web.seed import (
    SECRET_CAMPAIGN,
    SECRET_NAME,
    SECRET_VALUE,
    Seeded,
    indicator,
    seed,
    sighting,
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHIELDWALL = str(Path(sys.executable).with_name("shieldwall"))

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("web-browser")]

if not CHROMIUM.exists():
    print(f"skipping browser tests: {CHROMIUM} is missing (scripts/ensure-test-deps.sh "
          "installs Debian's chromium)")
    pytestmark.append(pytest.mark.skip(reason=f"{CHROMIUM} is missing"))


class Node:
    def __init__(self, home: Path, seeded: Seeded) -> None:
        self.home = home
        self.seeded = seeded
        self.url = ""
        self.log: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SHIELDWALL, "serve", "--home", str(self.home), "--host", "127.0.0.1",
             "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def drain() -> None:
            assert self.proc and self.proc.stderr
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"dashboard on (http://127\.0\.0\.1:\d+)/dashboard/", line)
                if m:
                    self.url = m.group(1) + "/dashboard"
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise RuntimeError("shieldwall serve did not start:\n" + "\n".join(self.log))
        deadline = time.monotonic() + 30
        while httpx.get(self.url + "/login", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("dashboard never answered:\n" + "\n".join(self.log))
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:  # open event streams hold uvicorn's shutdown
                self.proc.kill()
                self.proc.wait(5)

    def store(self) -> Store:
        return Store.open(load_config(self.home).db_url)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    home = tmp_path_factory.mktemp("web") / "node"
    init_home(home, "estonia")
    store = Store.open(load_config(home).db_url)
    seeded = seed(store)
    store.close()
    n = Node(home, seeded)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1366, "height": 860})  # type: ignore[attr-defined]
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def sign_in(page: object, node: Node, user: str) -> None:
    p = page
    p.goto(node.url + "/")  # type: ignore[attr-defined]
    assert "/dashboard/login" in p.url  # type: ignore[attr-defined]
    p.get_by_label("User name").fill(user)  # type: ignore[attr-defined]
    p.get_by_label("Password").fill(node.seeded.passwords[user])  # type: ignore[attr-defined]
    p.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    p.wait_for_url(node.url + "/")  # type: ignore[attr-defined]


def test_sign_in_page_loads_without_console_errors(page: object, node: Node) -> None:
    """A newcomer's first page: every request it makes answers, nothing in the console
    (a missing favicon is a 404 there, and the first thing a browser's tools show)."""
    p = page
    errors: list[str] = []
    failed: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    p.on("response", lambda r: failed.append(f"{r.status} {r.url}")  # type: ignore[attr-defined]
         if r.status >= 400 else None)
    p.goto(node.url + "/login")  # type: ignore[attr-defined]
    p.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    icon = p.evaluate("document.querySelector('link[rel=icon]') && "  # type: ignore[attr-defined]
                      "document.querySelector('link[rel=icon]').href")
    assert icon, "the page names its icon, so the browser does not guess /favicon.ico"
    assert httpx.get(icon, timeout=5).status_code == 200
    assert errors == [] and failed == []


def test_overview_and_follow_a_sighting_to_its_indicator(page: object, node: Node) -> None:
    from playwright.sync_api import expect

    p = page
    sign_in(p, node, "ana")
    expect(p.get_by_role("heading", name="The common picture")).to_be_visible()
    members = p.locator("li.member")
    expect(members.filter(has_text="latvia")).to_contain_text("elevated")
    expect(members.filter(has_text="estonia")).to_contain_text("2 sightings")
    rows = p.locator("#recent-sightings tbody tr")
    expect(rows).to_have_count(3)
    expect(p.locator("#timeline canvas").first).to_be_visible()
    campaigns = p.locator("section", has=p.get_by_role("heading", name="Active campaigns"))
    expect(campaigns.get_by_role("link", name="Operation Frostbite")).to_be_visible()
    shot(p, "overview-ally")
    row = p.locator(f'tr[data-sighting="{node.seeded.green_sighting}"]')
    row.get_by_role("link", name="details").click()
    expect(p.get_by_role("heading", name="Why it matched")).to_be_visible()
    expect(p.locator("main")).to_contain_text("/var/log/zeek/latvia-conn.log:42")
    shot(p, "sighting")
    p.get_by_role("link", name="Shared C2 server").first.click()
    expect(p.locator("code.pattern")).to_have_text("[ipv4-addr:value = '198.51.100.7']")
    expect(p.get_by_role("heading", name="Where sighted")).to_be_visible()
    expect(p.locator("h1 .tlp")).to_have_text("TLP:GREEN")
    shot(p, "indicator")
    p.get_by_role("link", name="Campaigns").click()
    p.get_by_role("link", name="Operation Frostbite").click()
    linked = p.locator("section", has=p.get_by_role("heading", name="Linked objects"))
    expect(linked.get_by_role("link", name="Shared C2 server")).to_be_visible()
    expect(linked.get_by_role("link", name="Latvian grid operator intrusion")).to_be_visible()
    shot(p, "campaign")
    graph = p.locator("svg#campaign-graph")
    expect(graph).to_be_visible()
    expect(graph.locator(f'a[data-node="{node.seeded.incident}"]')).to_be_visible()
    graph.scroll_into_view_if_needed()
    graph.screenshot(path=str(ARTIFACTS / "web-campaign-graph.png"))


def test_partner_sees_no_amber_object_anywhere(page: object, node: Node) -> None:
    from playwright.sync_api import expect

    p = page
    s = node.seeded
    sign_in(p, node, "pat")
    expect(p.locator(".who")).to_contain_text("partnerland (partner)")
    secrets = (SECRET_VALUE, SECRET_NAME, SECRET_CAMPAIGN, s.amber_indicator,
               s.amber_sighting, s.amber_campaign)

    def visible_text() -> str:
        return p.content()  # type: ignore[attr-defined,no-any-return]

    expect(p.locator("#timeline canvas").first).to_be_visible()
    shot(p, "overview-partner")
    for path in ("/", "/sightings", "/campaigns", "/incidents", "/intel",
                 "/intel?tlp=amber", f"/objects/{s.green_indicator}"):
        p.goto(node.url + path)
        html = visible_text()
        for secret in secrets:
            assert secret not in html, (path, secret)
    # Search for the AMBER value: nothing found (the box echoes the query; the table is empty).
    p.goto(node.url + "/intel")
    p.get_by_label("Value").fill(SECRET_VALUE)
    p.get_by_role("button", name="Search").click()
    expect(p.locator("#result-count")).to_have_text("0 indicators")
    expect(p.locator("table.data tbody tr")).to_have_count(0)
    shot(p, "partner-search")
    # Guess the AMBER objects' URLs: the same 404 as an id that never existed.
    for stix_id in (s.amber_indicator, s.amber_sighting, s.amber_campaign):
        resp = p.goto(f"{node.url}/objects/{stix_id}")
        assert resp is not None and resp.status == 404
        api = p.request.get(f"{node.url}/api/objects/{stix_id}")
        assert api.status == 404
    never = p.goto(f"{node.url}/objects/indicator--00000000-0000-4000-8000-000000000000")
    assert never is not None and never.status == 404
    assert SECRET_NAME not in visible_text()
    # JSON endpoints and their counts.
    for path in ("/api/overview", "/api/indicators", f"/api/indicators?q={SECRET_VALUE}",
                 "/api/sightings", "/api/timeline", "/api/campaigns", "/api/incidents"):
        resp = p.request.get(node.url + path)
        assert resp.status == 200, path
        for secret in secrets:
            assert secret not in resp.text(), (path, secret)
    overview = p.request.get(node.url + "/api/overview").json()
    assert overview["total_indicators"] == 1
    assert overview["total_sightings"] == 2


def test_live_sighting_appears_without_reload(page: object, node: Node) -> None:
    from playwright.sync_api import expect

    p = page
    sign_in(p, node, "ana")
    expect(p.locator("#live-status")).to_have_text("live")
    marker = p.evaluate("() => { window.__sameDocument = 'yes'; return 1; }")
    assert marker == 1
    store = node.store()
    try:
        ind = indicator("Wiper dropper", "192.0.2.99", TLP.GREEN, "latvia")
        new = sighting(ind, "latvia", TLP.GREEN, int(time.time() * 1_000_000), count=99,
                       value="192.0.2.99")
        store.put_many([ind, new], Provenance("latvia", "taxii"))
    finally:
        store.close()
    row = p.locator(f'tr[data-sighting="{new["id"]}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Wiper dropper")
    expect(row).to_contain_text("99")
    # Still the same document: the row came over the event stream, not a reload.
    assert p.evaluate("() => window.__sameDocument") == "yes"
    shot(p, "live")
