"""Nodes for federation tests: real `shieldwall serve` processes on 127.0.0.1 ephemeral
ports, each with its own SQLite home, registered with each other as members and peers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from shieldwall.config import init_home, load_config
from shieldwall.federation import add_peer
from shieldwall.policy import Members
from shieldwall.store import Provenance, Query, Store
from tests.taxii.conftest import Server, start_server

SHIELDWALL = str(Path(sys.executable).with_name("shieldwall"))


@dataclass
class NodeHome:
    name: str
    home: Path
    tier: str = "ally"
    server: Server | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # member name -> its token here

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def store(self) -> Store:
        return Store.open(load_config(self.home).db_url)

    def ids(self) -> set[str]:
        s = self.store()
        try:
            return {r.id for r in s.iter_query(Query())}
        finally:
            s.close()

    def start(self, *args: str) -> None:
        self.server = start_server(self.home, *args)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SHIELDWALL, *args, "--home", str(self.home)], text=True,
                              capture_output=True, timeout=120, check=check)


def make_node(root: Path, name: str, tier: str = "ally") -> NodeHome:
    home = root / name
    init_home(home, name, tier=tier)
    Store.open(f"sqlite:///{home / 'shieldwall.db'}").close()
    return NodeHome(name, home, tier)


def register(a: NodeHome, b: NodeHome, tier: str | None = None) -> None:
    """b becomes a member of a (tier of b unless given); its token lands in b's home."""
    s = a.store()
    try:
        token = Members(s.engine).add(b.name, tier or b.tier)
    finally:
        s.close()
    a.tokens[b.name] = token
    (b.home / f"token-at-{a.name}").write_text(token + "\n")


def peer(a: NodeHome, b: NodeHome, tier: str | None = None) -> None:
    """a syncs with b (b must be serving and have registered a)."""
    add_peer(load_config(a.home), b.name, b.url, a.home / f"token-at-{b.name}",
             tier=tier or b.tier, replace=True)


def put(node: NodeHome, objs: list[dict[str, Any]], channel: str = "import") -> None:
    s = node.store()
    try:
        s.put_many(objs, Provenance(node.name, channel))
    finally:
        s.close()


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        time.sleep(0.1)


@pytest.fixture
def fast_sync() -> Iterator[None]:
    old = os.environ.get("SHIELDWALL_SYNC_INTERVAL")
    os.environ["SHIELDWALL_SYNC_INTERVAL"] = "1"
    yield
    if old is None:
        os.environ.pop("SHIELDWALL_SYNC_INTERVAL", None)
    else:
        os.environ["SHIELDWALL_SYNC_INTERVAL"] = old


def send_taxii(handler: BaseHTTPRequestHandler, body: Any, code: int = 200,
               headers: Mapping[str, str] | None = None) -> None:
    """Answer a request to a test's own TAXII peer with `body` as TAXII JSON."""
    data = json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/taxii+json;version=2.1")
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)
