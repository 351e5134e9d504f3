"""Federation with a TAXII 2.1 server we did not write: medallion, the OASIS reference
server, as a real process on 127.0.0.1 (memory backend, HTTP Basic users), driven by the
real CLI (`shieldwall peer add`, `sync`, `peer list`, `peer collections`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shieldwall.federation.peers import PULL_KEY
from tests.factories import indicator
from tests.federation.conftest import SHIELDWALL, NodeHome, make_node, send_taxii

MEDALLION = str(Path(sys.executable).with_name("medallion"))
USER, PASSWORD = "shieldwall", "correct horse battery"
READ = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"  # medallion's readable collection
WRITE = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"  # and its writable one
FEED = "identity--0f0e0d0c-0b0a-4909-8807-060504030201"


@dataclass
class Medallion:
    url: str
    proc: subprocess.Popen[bytes]
    root: str

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}/{self.root}/{path}", params=params, auth=(USER, PASSWORD),
                      headers={"Accept": "application/taxii+json;version=2.1"}, timeout=30)
        r.raise_for_status()
        return r.json()

    def objects(self, coll: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        body = self.get(f"collections/{coll}/objects/")
        out += body.get("objects", [])
        while body.get("more"):
            body = self.get(f"collections/{coll}/objects/", next=body["next"])
            out += body.get("objects", [])
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_medallion(tmp: Path, objects: list[dict[str, Any]], *, root: str = "trustgroup1",
                    page: int = 100, port: int = 0) -> Medallion:
    """medallion with one API root `root` holding a readable collection of `objects`
    (added a millisecond apart) and an empty writable one, neither with an alias."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    added = [(t0 + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
             for i in range(len(objects))]
    data = {
        "/discovery": {"title": "medallion under test", "default": f"{url}/{root}/",
                       "api_roots": [f"{url}/{root}/"]},
        root: {
            "information": {"title": "trust group",
                            "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 9765625},
            "status": [],
            "collections": [
                {"id": READ, "title": "High Value Indicator Collection", "can_read": True,
                 "can_write": False, "media_types": ["application/stix+json;version=2.1"],
                 "objects": objects,
                 "manifest": [{"id": o["id"], "date_added": a, "version": o["modified"],
                               "media_type": "application/stix+json;version=2.1"}
                              for o, a in zip(objects, added, strict=True)]},
                {"id": WRITE, "title": "Shared Sightings", "can_read": True,
                 "can_write": True, "media_types": ["application/stix+json;version=2.1"],
                 "objects": [], "manifest": []},
            ],
        },
    }
    (tmp / "medallion-data.json").write_text(json.dumps(data))
    (tmp / "medallion.json").write_text(json.dumps({
        "backend": {"module_class": "MemoryBackend", "module": "medallion.backends.memory_backend",
                    "filename": str(tmp / "medallion-data.json")},
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": page},
    }))
    proc = subprocess.Popen([MEDALLION, "--host", "127.0.0.1", "--port", str(port),
                             str(tmp / "medallion.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    m = Medallion(url, proc, root)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/taxii2/", timeout=2).status_code in (200, 401):
                return m
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("medallion did not start")
        time.sleep(0.1)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeHome]:
    yield make_node(tmp_path, "south")


def feed(n: int) -> list[dict[str, Any]]:
    return [indicator(f"198.51.{100 + i // 250}.{i % 250}", created_by_ref=FEED)
            for i in range(n)]


def cli(node: NodeHome, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHIELDWALL, *args, "--home", str(node.home)],
                          env=os.environ | {"COLUMNS": "400"}, text=True,
                          capture_output=True, timeout=180, check=check)


def held(node: NodeHome) -> set[str]:
    return node.ids()


def add_medallion(node: NodeHome, m: Medallion, *extra: str, password: str = PASSWORD
                  ) -> Path:
    secret = node.home / "medallion.secret"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    added = cli(node, "peer", "add", "medallion", m.url + "/taxii2/", "--auth", "basic",
                "--user", USER, "--secret-file", str(secret), "--pull", READ, *extra).stdout
    assert f"auth basic ({USER})" in added and password not in added
    return secret


# ---- authentication ---------------------------------------------------------------------


def test_basic_auth_pulls_from_medallion_and_keeps_the_password_out_of_the_config(
        tmp_path: Path, node: NodeHome) -> None:
    objs = feed(30)
    m = start_medallion(tmp_path, objs)
    try:
        add_medallion(node, m)
        config = (node.home / "shieldwall.toml").read_text()
        assert PASSWORD not in config and 'auth = "basic"' in config
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert {o["id"] for o in objs} <= held(node)
        listing = cli(node, "peer", "list").stdout
        assert PASSWORD not in listing and " medallion " in listing
    finally:
        m.proc.kill()
        m.proc.wait()


def test_a_wrong_password_is_a_401_in_peer_list(tmp_path: Path, node: NodeHome) -> None:
    m = start_medallion(tmp_path, feed(3))
    try:
        add_medallion(node, m, password="wrong")
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 1
        row = next(line for line in cli(node, "peer", "list").stdout.splitlines()
                   if " medallion " in line)
        assert "HTTP 401" in row and "wrong" not in row
        assert not held(node)
    finally:
        m.proc.kill()
        m.proc.wait()


# ---- paging -------------------------------------------------------------------------------


def test_a_multi_page_collection_is_pulled_whole_by_following_next(
        tmp_path: Path, node: NodeHome) -> None:
    """250 objects served 100 a page: every page is pulled in one sync (medallion refuses
    a `next` sent with filters the first request did not have)."""
    objs = feed(250)
    m = start_medallion(tmp_path, objs)
    try:
        add_medallion(node, m)
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert {o["id"] for o in objs} <= held(node)
        # a second sync asks for what was added after the last page: nothing new, no error
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        m.proc.kill()
        m.proc.wait()


def test_a_saved_next_the_server_forgot_is_recovered_and_reported(
        tmp_path: Path, node: NodeHome) -> None:
    """A `next` saved by a round cut at its page cap, which the server no longer honours
    (medallion restarted, its sessions in memory), never wedges the peer: the pull starts
    again from the last page stored, and `peer list` says the cursor was dropped."""
    objs = feed(250)
    m = start_medallion(tmp_path, objs)
    try:
        add_medallion(node, m)
        r = subprocess.run([SHIELDWALL, "sync", "--retries", "0", "--home", str(node.home)],
                           env=os.environ | {"SHIELDWALL_FEDERATION__MAX_PAGES": "1"},
                           text=True, capture_output=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert len(held(node) & {o["id"] for o in objs}) == 100
        s = node.store()
        try:
            saved = json.loads(s.kv_get(f"{PULL_KEY}medallion:{READ}") or "{}")
        finally:
            s.close()
        assert saved.get("next")
        m.proc.kill()
        m.proc.wait()
        # the same objects at the same address; its `next` sessions are gone
        m = start_medallion(tmp_path, objs, port=int(m.url.rsplit(":", 1)[1]))
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert {o["id"] for o in objs} <= held(node)
        row = next(line for line in cli(node, "peer", "list").stdout.splitlines()
                   if " medallion " in line)
        assert "cursor" in row
    finally:
        m.proc.kill()
        m.proc.wait()


# ---- discovery and collections -------------------------------------------------------------


def test_peer_collections_lists_what_discovery_finds_and_a_title_selects_one(
        tmp_path: Path, node: NodeHome) -> None:
    """medallion's API root is not /api/: the client follows its discovery document, and
    `--pull` may name a collection by its title."""
    objs = feed(5)
    m = start_medallion(tmp_path, objs, root="trustgroup1")
    try:
        secret = node.home / "medallion.secret"
        secret.write_text(PASSWORD)
        cli(node, "peer", "add", "medallion", m.url, "--auth", "basic", "--user", USER,
            "--secret-file", str(secret), "--pull", "High Value Indicator Collection")
        listing = cli(node, "peer", "collections", "medallion").stdout
        assert f"{m.url}/trustgroup1/" in listing
        rows = {line.split("│")[1].strip(): line for line in listing.splitlines()
                if line.count("│") > 4}
        assert READ in rows and "High Value Indicator" in rows[READ] and \
            "True" in rows[READ].split("│")[4] and "False" in rows[READ].split("│")[5]
        assert WRITE in rows and "True" in rows[WRITE].split("│")[5]
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert {o["id"] for o in objs} <= held(node)
    finally:
        m.proc.kill()
        m.proc.wait()


# ---- push -------------------------------------------------------------------------------


def test_a_backlog_is_pushed_with_its_dependencies_first(tmp_path: Path, node: NodeHome
                                                         ) -> None:
    """Objects imported before the peer was added reach medallion's writable collection
    (named by title: it has no aliases), after the node's identity and the TLP marking
    definitions they reference; a second sync sends nothing twice."""
    from shieldwall.policy import member_identity_id
    from shieldwall.stix.markings import TLP, tlp_marking_ref
    from tests.federation.conftest import put

    me = member_identity_id("south")
    own = [indicator(f"203.0.113.{i}", created_by_ref=me) for i in range(40)]
    put(node, own)
    m = start_medallion(tmp_path, [])
    try:
        add_medallion(node, m, "--push", "Shared Sightings")
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        got = m.objects(WRITE)
        ids = [o["id"] for o in got]
        assert {o["id"] for o in own} <= set(ids)
        assert me in ids and tlp_marking_ref(TLP.GREEN) in ids
        first_own = min(ids.index(o["id"]) for o in own)
        assert ids.index(me) < first_own and ids.index(tlp_marking_ref(TLP.GREEN)) < first_own
        row = next(line for line in cli(node, "peer", "list").stdout.splitlines()
                   if " medallion " in line)
        assert "│ 40 " in row  # what was pushed: our objects, not the dependencies
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0 and len(m.objects(WRITE)) == len(got)
    finally:
        m.proc.kill()
        m.proc.wait()


def test_push_waits_for_a_writable_collection_and_loses_nothing(
        tmp_path: Path, node: NodeHome) -> None:
    """Without a collection to push to (none configured, no alias the peer knows), the
    push cursor stays: once `--push` names one, the backlog goes."""
    from shieldwall.policy import member_identity_id
    from tests.federation.conftest import put

    own = [indicator(f"203.0.113.{i}", created_by_ref=member_identity_id("south"))
           for i in range(5)]
    put(node, own)
    m = start_medallion(tmp_path, [])
    try:
        add_medallion(node, m)
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not m.objects(WRITE)
        row = next(line for line in cli(node, "peer", "list").stdout.splitlines()
                   if " medallion " in line)
        assert "no writable collection" in row
        add_medallion(node, m, "--push", WRITE, "--replace")
        r = cli(node, "sync", "--retries", "0", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert {o["id"] for o in own} <= {o["id"] for o in m.objects(WRITE)}
    finally:
        m.proc.kill()
        m.proc.wait()


def test_a_discovery_document_cannot_send_the_credentials_elsewhere() -> None:
    """A peer whose discovery names an API root on another server: refused, and that
    server never sees the peer's password."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from shieldwall.taxii.client import Credentials, TaxiiClient, TaxiiClientError

    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    there = f"http://127.0.0.1:{other.server_address[1]}/api1/"

    class Peer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            send_taxii(self, {"title": "t", "default": there, "api_roots": [there]})

        def log_message(self, *args: Any) -> None:
            pass

    peer = ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    for srv in (other, peer):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = TaxiiClient(f"http://127.0.0.1:{peer.server_address[1]}/taxii2/",
                         Credentials("basic", PASSWORD, user=USER))
    try:
        with pytest.raises(TaxiiClientError, match="another server"):
            client.collections()
        assert seen == []
    finally:
        client.close()
        for srv in (other, peer):
            srv.shutdown()
            srv.server_close()
