"""Shared fixtures: a node home on SQLite or PostgreSQL, a real `shieldwall serve`
process on an ephemeral port, members registered on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shieldwall.config import init_home
from shieldwall.policy import Members
from shieldwall.store import Store

SHIELDWALL = str(Path(sys.executable).with_name("shieldwall"))
PG_ENV = "SHIELDWALL_TEST_DATABASE_URL"


@dataclass
class Server:
    """A running `shieldwall serve`; `log` collects its stderr (access logs included)."""

    home: Path
    proc: subprocess.Popen[str]
    url: str = ""
    log: list[str] = field(default_factory=list)

    def api(self, path: str = "") -> str:
        return f"{self.url}/api/{path}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_server(home: Path, *args: str) -> Server:
    proc = subprocess.Popen(
        [SHIELDWALL, "serve", "--home", str(home), "--port", "0", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    server = Server(home, proc)
    ready = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            server.log.append(line.rstrip("\n"))
            m = re.search(r"serving TAXII 2\.1 on (https?://[\d.]+:\d+)/", line)
            if m:
                server.url = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(120) or not server.url:
        server.stop()
        raise RuntimeError("shieldwall serve did not start:\n" + "\n".join(server.log))
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(server.url + "/healthz", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("shieldwall serve never became healthy:\n" + "\n".join(server.log))
        time.sleep(0.1)


def _pg_database() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        print(f"skipping PostgreSQL: {PG_ENV} is not set")
        pytest.skip(f"{PG_ENV} is not set")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"sw_taxii_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh database per test module, dropped afterwards (modules hold their own members)."""
    yield from _pg_database()


def make_home(root: Path, database_url: str | None = None, **settings: object) -> Path:
    home = root / "node"
    kw = {"database_url": database_url} if database_url else {}
    init_home(home, "home-node", **kw, **settings)
    Store.open(database_url or f"sqlite:///{home / 'shieldwall.db'}").close()  # migrate
    return home


def db_url(home: Path) -> str:
    from shieldwall.config import load_config

    return load_config(home).db_url


def add_members(home: Path, spec: dict[str, str]) -> dict[str, str]:
    """Register members directly (the CLI has its own test); returns name -> token."""
    store = Store.open(db_url(home))
    try:
        reg = Members(store.engine)
        return {name: reg.add(name, tier) for name, tier in spec.items()}
    finally:
        store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """`None` for SQLite in the node's home, else a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")
