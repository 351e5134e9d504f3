"""Fixtures every room's tests share: a store on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shieldwall.store import Store

PG_URL = os.environ.get("SHIELDWALL_TEST_DATABASE_URL")


def pg_schema_url(prefix: str = "t") -> tuple[str, str]:
    """A PostgreSQL URL whose search_path is a fresh schema, so tests never see each other."""
    assert PG_URL
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


def drop_pg_schema(schema: str) -> None:
    import psycopg

    assert PG_URL
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same tests run on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        yield s
        s.close()
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SHIELDWALL_TEST_DATABASE_URL (CI sets it)")
    url, schema = pg_schema_url()
    s = Store.open(url)
    try:
        yield s
    finally:
        s.close()
        drop_pg_schema(schema)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()
