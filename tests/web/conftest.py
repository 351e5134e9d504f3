"""Dashboard fixtures: a seeded store and the TAXII app with the dashboard mounted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shieldwall.store import Store
from shieldwall.taxii.app import Settings, access_for, create_app
from shieldwall.web import mount
from tests.web.seed import Seeded, seed


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Store, Seeded]]:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield store, seed(store)
    store.close()


@pytest.fixture
def client(seeded: tuple[Store, Seeded]) -> Iterator[TestClient]:
    store, _ = seeded
    app = create_app(store, Settings(node_member="estonia"))
    mount(app, store, access_for, node_member="estonia")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
