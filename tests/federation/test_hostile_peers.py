"""A hostile peer cannot stall or exhaust the node that pulls from it.

The attacker runs its own TAXII server (a stdlib HTTP server on 127.0.0.1 that answers as
it likes: a cursor that never moves, cursors without end, bytes trickled one at a time,
an object of 300 MB, JSON nested without end); the victim is a real node running
`shieldwall sync` or `shieldwall serve`. Every `sync` runs under a guard timeout so that
the test ends even when the victim would not; the assertions are on behaviour: requests
the peer received, bytes it managed to send, what the victim stored, counted and shows
in `peer list`.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from shieldwall.federation import load_state
from shieldwall.federation.peers import PULL_KEY
from shieldwall.stix.bounded_json import MAX_DEPTH
from tests.factories import indicator
from tests.federation.conftest import SHIELDWALL, NodeHome, wait_for
from tests.federation.test_arrival import (
    ADDED,
    MALLORY,
    HostilePeer,
    _held,
    _peer,
    victim,  # noqa: F401  (the fixture)
)

GUARD = 90  # seconds: ends a `sync` that would never end on its own
MB = 1024 * 1024
TAXII = "application/taxii+json;version=2.1"

Answer = Callable[["Mallory", BaseHTTPRequestHandler, dict[str, list[str]], int], None]


class Mallory:
    """A TAXII root whose objects GETs are answered by `answer(self, handler, query, n)`
    (n counts them from 1); its collections list is empty, so nothing is pushed to it.
    `requests` holds each objects GET's query; `sent` the bytes its answers wrote;
    `cut` is set when the victim hung up on an answer still being written."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self.sent = 0
        self.writing = 0  # answers being written right now
        self.cut = threading.Event()
        self.closing = threading.Event()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/api/collections/alliance/objects/"):
                    q = parse_qs(urlsplit(self.path).query)
                    peer.requests.append(q)
                    peer.writing += 1
                    try:
                        answer(peer, self, q, len(peer.requests))
                    except (BrokenPipeError, ConnectionResetError):
                        peer.cut.set()
                    finally:
                        peer.writing -= 1
                else:
                    send(self, {"collections": []})

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def write(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.sent += len(data)

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler: BaseHTTPRequestHandler, body: dict[str, Any] | bytes) -> None:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    handler.send_response(200)
    handler.send_header("Content-Type", TAXII)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("X-TAXII-Date-Added-Last", ADDED)
    handler.end_headers()
    handler.wfile.write(data)


def sync(node: NodeHome, **env: str) -> subprocess.CompletedProcess[str]:
    """`shieldwall sync` once, no retries: each request counted is one attempt's."""
    return subprocess.run(
        [SHIELDWALL, "sync", "--retries", "0", "--home", str(node.home)],
        env=os.environ | {"COLUMNS": "400"} | env, capture_output=True, text=True,
        timeout=GUARD)


def peer_row(node: NodeHome, name: str = "mallory") -> str:
    listing = subprocess.run([SHIELDWALL, "peer", "list", "--home", str(node.home)],
                             env=os.environ | {"COLUMNS": "400"}, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    return next(line for line in listing.splitlines() if f" {name} " in line)


def state(node: NodeHome, name: str = "mallory") -> Any:
    s = node.store()
    try:
        return load_state(s, name), s.kv_get(f"{PULL_KEY}{name}:alliance")
    finally:
        s.close()


# ---- cursors -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["1", "10"], ids=["full pages", "short pages"])
def test_a_peer_repeating_its_cursor_is_refused(victim: NodeHome, page: str) -> None:  # noqa: F811
    """`more: true` with the same `next` and the same page forever kept `sync` looping
    (438 requests in 20 s). The first page is stored and counted; the repeat fails the
    pull at the second. (The same `next` with pages that move on is medallion's honest
    paging: tests/federation/test_foreign_taxii.py.)"""
    first = indicator("198.51.100.80", created_by_ref=MALLORY)

    def loop(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int) -> None:
        send(h, {"more": True, "next": "same", "objects": [first]})

    mallory = Mallory(loop)
    try:
        _peer(victim, "mallory", mallory.url)
        r = sync(victim, SHIELDWALL_SYNC_PAGE=page)
        assert r.returncode == 1, r.stdout
        assert len(mallory.requests) == 2
        assert [q.get("next") for q in mallory.requests] == [None, ["same"]]
        assert set(_held(victim)) == {first["id"]}  # the repeated page is not stored
        st, _ = state(victim)
        assert st.pulled == 1  # counted though the pull failed after it
        assert "repeated its next cursor" in st.last_error
        row = peer_row(victim)
        assert "repeated its next cursor" in row and "│ 1 " in row

        # The next round resumes at the saved cursor and stops at its first repeated page.
        r = sync(victim, SHIELDWALL_SYNC_PAGE=page)
        assert r.returncode == 1 and len(mallory.requests) == 4
        assert [q.get("next") for q in mallory.requests[2:]] == [["same"], ["same"]]
    finally:
        mallory.close()


@pytest.mark.parametrize("page", ["1", "10"], ids=["full pages, worker", "short pages"])
def test_cursors_without_end_are_cut_at_the_page_cap_per_round(
        victim: NodeHome, page: str) -> None:  # noqa: F811
    """A new `next` each time, forever: one round makes at most `max_pages` requests,
    stores what they held and saves the cursor; the next round goes on from there."""
    def endless(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int) -> None:
        send(h, {"more": True, "next": f"c{n}",
                 "objects": [indicator(f"198.51.{n // 256}.{n % 256}", created_by_ref=MALLORY,
                                       oid=f"indicator--00000000-0000-4000-8000-{n:012d}")]})

    mallory = Mallory(endless)
    try:
        _peer(victim, "mallory", mallory.url)
        cap = {"SHIELDWALL_SYNC_PAGE": page, "SHIELDWALL_FEDERATION__MAX_PAGES": "20"}
        r = sync(victim, **cap)
        assert r.returncode == 0, r.stdout  # an honest backlog too may take rounds
        assert len(mallory.requests) == 20
        assert len(_held(victim)) == 20
        st, cursor = state(victim)
        assert st.pulled == 20 and '"next":"c20"' in cursor
        r = sync(victim, **cap)
        assert len(mallory.requests) == 40 and mallory.requests[20].get("next") == ["c20"]
        assert len(_held(victim)) == 40
    finally:
        mallory.close()


def test_a_cursor_the_peer_no_longer_honours_restarts_after_the_last_page(
        victim: NodeHome) -> None:  # noqa: F811
    """A peer that restarted (its `next` tokens sealed with another key) answers 400 to
    a token it issued: the pull starts again after the last page stored, keeping the
    query's `added_after` while it follows `next` (our server binds a token to it)."""
    objs = [indicator("198.51.100.120", created_by_ref=MALLORY),
            indicator("198.51.100.121", created_by_ref=MALLORY)]
    first_added = "2024-06-01T00:00:01.000000Z"

    def answer(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int
               ) -> None:
        if "next" in q:
            h.send_error(400, "next: not a token this server issued")
            return
        after = q.get("added_after", [""])[0]
        page = {"more": True, "next": "t1", "objects": [objs[0]]} if not after else \
            {"more": False, "objects": [objs[1]]}
        data = orjson.dumps(page)
        h.send_response(200)
        h.send_header("Content-Type", TAXII)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-TAXII-Date-Added-Last", first_added if not after else ADDED)
        h.end_headers()
        h.wfile.write(data)

    mallory = Mallory(answer)
    try:
        _peer(victim, "mallory", mallory.url)
        r = sync(victim)
        assert r.returncode == 0, r.stdout
        assert [(q.get("added_after"), q.get("next")) for q in mallory.requests] == [
            (None, None), (None, ["t1"]), ([first_added], None)]
        assert set(_held(victim)) == {o["id"] for o in objs}
    finally:
        mallory.close()


# ---- time ----------------------------------------------------------------------------------


def trickle(part: str, every: float = 0.2) -> Answer:
    """An answer whose status line and headers (or body) come a byte every `every` s,
    until the victim hangs up."""
    body = orjson.dumps({"more": False, "objects": [indicator("198.51.100.90",
                                                                created_by_ref=MALLORY)]})
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: {TAXII}\r\nContent-Length: {len(body)}\r\n"
            f"X-TAXII-Date-Added-Last: {ADDED}\r\n\r\n").encode()

    def answer(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int
               ) -> None:
        if part == "body":
            m.write(h, head)
        slow = head if part == "headers" else body
        for i in range(len(slow)):
            if m.closing.wait(every):
                return
            m.write(h, slow[i:i + 1])
        if part == "headers":
            m.write(h, body)

    return answer


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_trickling_peer_is_cut_at_the_deadline(victim: NodeHome, part: str) -> None:  # noqa: F811
    """A byte every 0.2 s never trips a per-read timeout; the deadline per request
    ends it, the peer is marked failed with the reason, and nothing of it is stored."""
    mallory = Mallory(trickle(part))
    try:
        _peer(victim, "mallory", mallory.url)
        r = sync(victim, SHIELDWALL_FEDERATION__REQUEST_DEADLINE="3")
        assert r.returncode == 1, r.stdout
        assert len(mallory.requests) == 1
        wait_for(mallory.cut.is_set, 10, "the victim to hang up")
        assert _held(victim) == {}
        st, _ = state(victim)
        assert "no complete answer within 3 s" in st.last_error
        assert "no complete answer within 3 s" in peer_row(victim)
    finally:
        mallory.close()


def honest(objects: list[dict[str, Any]]) -> Answer:
    """A peer that serves `objects` in one page, the n-th added at second n, after the
    client's `added_after`: objects appended later reach the next pull."""
    def added(i: int) -> str:
        return f"2024-06-01T00:00:{i:02d}.000000Z"

    def answer(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int
               ) -> None:
        after = q.get("added_after", [""])[0]
        new = [i for i in range(len(objects)) if added(i) > after]
        data = orjson.dumps({"more": False, "objects": [objects[i] for i in new]})
        h.send_response(200)
        h.send_header("Content-Type", TAXII)
        h.send_header("Content-Length", str(len(data)))
        if new:
            h.send_header("X-TAXII-Date-Added-Last", added(new[-1]))
        h.end_headers()
        h.wfile.write(data)

    return answer


def test_a_stalled_peer_does_not_hold_back_the_others(
        victim: NodeHome, fast_sync: None) -> None:  # noqa: F811
    """One peer trickles its answers for a minute; another's objects still arrive, both
    in the background rounds of `serve` and in a one-off `sync`, which ends at the
    deadline with the stalled peer failed and the honest one done."""
    honest_obj = indicator("198.51.100.95", created_by_ref=MALLORY)
    served = [honest_obj]
    good = Mallory(honest(served))
    stalled = Mallory(trickle("headers", every=1.0))
    try:
        _peer(victim, "mallory", good.url)
        _peer(victim, "stalled", stalled.url)
        r = sync(victim, SHIELDWALL_FEDERATION__REQUEST_DEADLINE="4")
        assert r.returncode == 1
        assert set(_held(victim)) == {honest_obj["id"]}
        st, _ = state(victim, "stalled")
        assert "no complete answer within 4 s" in st.last_error
        assert "no complete answer" not in peer_row(victim, "mallory")

        later = indicator("198.51.100.96", created_by_ref=MALLORY)
        served.append(later)
        stalled.requests.clear()
        victim.start()  # deadline 120 s by default: the stalled peer holds its pull
        try:
            wait_for(lambda: len(stalled.requests) >= 1 and stalled.writing == 1, 30,
                     "the stalled peer to be pulled")
            wait_for(lambda: later["id"] in _held(victim), 30, "the honest peer's object")
            assert stalled.writing == 1  # still stalled while the other was pulled
            assert [q.get("added_after") for q in good.requests[1:2]] == [
                ["2024-06-01T00:00:00.000000Z"]]
        finally:
            victim.stop()
    finally:
        good.close()
        stalled.close()


# ---- size ------------------------------------------------------------------------------------


def huge(size: int, declared: bool) -> Answer:
    """A page holding one indicator whose description is `size` bytes, written 1 MB at a
    time (never held whole by the peer); with or without a Content-Length."""
    obj = indicator("198.51.100.97", created_by_ref=MALLORY, description="")
    start, end = orjson.dumps({"more": False, "objects": [obj]}).split(b'"description":""')
    start += b'"description":"'
    end = b'"' + end
    chunk = b"A" * MB

    def answer(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int
               ) -> None:
        h.send_response(200)
        h.send_header("Content-Type", TAXII)
        h.send_header("X-TAXII-Date-Added-Last", ADDED)
        if declared:
            h.send_header("Content-Length", str(len(start) + size + len(end)))
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        m.write(h, start)
        for _ in range(size // MB):
            m.write(h, chunk)
        m.write(h, end)

    return answer


_MEASURED = r"""
import os, subprocess, sys, resource
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 * 1024**3, 4 * 1024**3))


@pytest.mark.parametrize(("size", "declared"), [(300, True), (300, False), (90, False)],
                         ids=["300 MB, declared length", "300 MB, undeclared",
                              "90 MB, under the page cap"])
def test_a_huge_object_is_refused_in_bounded_memory(
        victim: NodeHome, size: int, declared: bool) -> None:  # noqa: F811
    """A page over `max_content_length` (100 MB by default) fails the pull: the victim
    stops reading there and stores nothing of it. An object under it but over
    `max_object_bytes` (16 MB) is refused and counted. Either way the victim's peak RSS
    stays far from the 1.4 GB that storing a 300 MB object cost."""
    import sys

    mallory = Mallory(huge(size * MB, declared))
    try:
        _peer(victim, "mallory", mallory.url)
        out = subprocess.run(
            [sys.executable, "-c", _MEASURED, SHIELDWALL, "sync", "--retries", "0",
             "--home", str(victim.home)], capture_output=True, text=True, timeout=GUARD,
            preexec_fn=_limit_memory)
        code, peak_kb = map(int, out.stdout.split()[-2:])
        print(f"peak RSS of sync: {peak_kb / 1024:.0f} MB; the peer sent "
              f"{mallory.sent / MB:.0f} MB")
        assert _held(victim) == {}
        st, _ = state(victim)
        wait_for(lambda: mallory.writing == 0, 10, "the peer to stop writing")
        if size > 100:
            assert code == 1
            assert "answer larger than 104,857,600 bytes" in st.last_error
            # Stopped at the cap (declared: at once); what socket buffers took aside.
            assert mallory.sent < (16 if declared else 140) * MB
        else:
            assert code == 0 and (st.pulled, st.rejected) == (0, 1)
            assert "larger than 16,777,216 bytes" in st.last_rejection
        assert peak_kb < 500 * 1024  # about 3 times the page, at most, over ~80 MB
    finally:
        mallory.close()


def test_an_oversized_object_is_refused_and_counted_and_its_page_stored(
        victim: NodeHome) -> None:  # noqa: F811
    good = [indicator("198.51.100.98", created_by_ref=MALLORY),
            indicator("198.51.100.99", created_by_ref=MALLORY)]
    big = indicator("198.51.100.100", created_by_ref=MALLORY, description="A" * (17 * MB))
    mallory = HostilePeer([good[0], big, good[1]])
    try:
        _peer(victim, "mallory", mallory.url)
        r = sync(victim)
        assert r.returncode == 0, r.stdout
        assert set(_held(victim)) == {o["id"] for o in good}
        st, cursor = state(victim)
        assert (st.pulled, st.rejected) == (2, 1)
        assert st.last_rejection.startswith(f"{big['id']}: larger than 16,777,216 bytes")
        assert cursor is not None and ADDED in cursor  # past the page
    finally:
        mallory.close()


def test_a_member_posting_an_oversized_object_meets_the_same_cap(tmp_path: Path) -> None:
    """What a peer cannot deliver by a pull, a member cannot POST: the same
    `server.max_object_bytes`, refused per object, the rest of the envelope stored."""
    import httpx

    from tests.taxii.conftest import add_members, make_home, start_server

    home = make_home(tmp_path)
    token = add_members(home, {"north": "ally"})["north"]
    server = start_server(home)
    good = indicator("198.51.100.130")
    big = indicator("198.51.100.131", description="A" * (17 * MB))
    try:
        r = httpx.post(server.api("collections/alliance/objects/"),
                       content=orjson.dumps({"objects": [good, big]}),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": TAXII,
                                "Accept": TAXII}, timeout=120)
        assert r.status_code == 202, r.text
        status = r.json()
        assert [s["id"] for s in status["successes"]] == [good["id"]]
        [failure] = status["failures"]
        assert failure["id"] == big["id"]
        assert failure["message"].startswith("larger than 16,777,216 bytes")
    finally:
        server.stop()


# ---- depth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH, 200_000], ids=["under orjson's", "deep"])
def test_a_page_nested_too_deep_fails_the_pull_and_stores_nothing_of_it(
        victim: NodeHome, levels: int) -> None:  # noqa: F811
    good = indicator("198.51.100.101", created_by_ref=MALLORY)
    deep = orjson.dumps(indicator("198.51.100.102", created_by_ref=MALLORY))[:-1] + \
        b',"x_deep":' + b"[" * levels + b"]" * levels + b"}"
    page = b'{"more": false, "objects": [' + orjson.dumps(good) + b"," + deep + b"]}"

    mallory = Mallory(lambda m, h, q, n: send(h, page))
    try:
        _peer(victim, "mallory", mallory.url)
        r = sync(victim)
        assert r.returncode == 1
        assert _held(victim) == {}
        st, cursor = state(victim)
        assert f"answer nested deeper than {MAX_DEPTH} levels" in st.last_error
        assert cursor is None
    finally:
        mallory.close()


# ---- what a failed pull had done ---------------------------------------------------------


def test_a_pull_failing_midway_keeps_the_counts_of_the_pages_before(
        victim: NodeHome) -> None:  # noqa: F811
    """Pages 1 and 2 are stored (one object refused), page 3 answers 500: `peer list`
    shows what was pulled and rejected, and the error."""
    objs = [indicator(f"198.51.100.{110 + i}", created_by_ref=MALLORY) for i in range(4)]
    bad = indicator("192.0.2.110", created_by_ref=MALLORY)
    del bad["pattern"]
    pages = [[objs[0], bad], [objs[1], objs[2]]]

    def answer(m: Mallory, h: BaseHTTPRequestHandler, q: dict[str, list[str]], n: int
               ) -> None:
        if n <= len(pages):
            send(h, {"more": True, "next": f"p{n}", "objects": pages[n - 1]})
        else:
            h.send_error(500, "page 3 is broken")

    mallory = Mallory(answer)
    try:
        _peer(victim, "mallory", mallory.url)
        r = sync(victim, SHIELDWALL_SYNC_PAGE="2")
        assert r.returncode == 1
        assert len(mallory.requests) == 3
        assert set(_held(victim)) == {o["id"] for o in objs[:3]}
        st, cursor = state(victim)
        assert (st.pulled, st.rejected) == (3, 1)
        assert "HTTP 500" in st.last_error and '"next":"p2"' in cursor
        row = peer_row(victim)
        assert "│ 3 " in row and "│ 1 " in row and "HTTP 500" in row
    finally:
        mallory.close()

