"""Objects stored as a node at an older schema revision wrote them, for upgrade tests.

The rows are the store's own (`prepare_many`), written with the columns that revision had:
the upgrade under test must then fill what later revisions add (migration 0015's status,
0017's audience key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text

from shieldwall.store.migrate import current, upgrade
from shieldwall.store.prepare import prepare_many

COLUMNS_0014 = ("id", "type", "spec_version", "version_us", "date_added_us", "is_latest",
                "revoked", "tlp", "created_by_ref", "name", "source", "channel", "collection",
                "json")
# Revisions 0015 and 0016 keep each row's status.
COLUMNS_WITH_STATUS = (*COLUMNS_0014, "status")


def write_at(url: str, revision: str, objs: list[dict[str, Any]],
             source_of: Callable[[str], str]) -> None:
    """Store `objs` at `revision` ("0014" or "0016"), each version's source the member
    `source_of(id)` names, with its audience rows."""
    columns = COLUMNS_0014 if revision < "0015" else COLUMNS_WITH_STATUS
    engine = create_engine(url)
    upgrade(engine, revision)
    rows = prepare_many(objs, 1_900_000_000_000_000)
    newest: dict[str, int] = {}
    for p in rows:
        newest[p.id] = max(newest.get(p.id, 0), p.version_us)
    cols = ", ".join(columns)
    marks = ", ".join(f":{c}" for c in columns)
    with engine.begin() as conn:
        for i, p in enumerate(rows):
            values = (p.id, p.type, p.spec_version, p.version_us, 1_000 + i,
                      p.version_us == newest[p.id], p.revoked, p.tlp, p.created_by_ref, p.name,
                      source_of(p.id), "local", None, p.text, p.status)
            conn.execute(text(f"INSERT INTO objects ({cols}) VALUES ({marks})"),
                         dict(zip(columns, values[:len(columns)], strict=True)))
            seq = conn.execute(text("SELECT seq FROM objects WHERE id = :id AND "
                                    "version_us = :v"), {"id": p.id, "v": p.version_us}
                               ).scalar_one()
            for name in p.audience:
                conn.execute(text("INSERT INTO audience (seq, name) VALUES (:s, :n)"),
                             {"s": seq, "n": name})
    assert current(engine) == revision
    engine.dispose()
