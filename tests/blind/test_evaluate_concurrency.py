"""The quota count is taken under the store's write lock, so another writer never turns an
ally's evaluation into a 500.

The count reads today's row, then updates it. On SQLite a transaction that began by reading
cannot upgrade to writing once another connection has committed in between: SQLite answers
"database is locked" at once, whatever the busy timeout. A full test run hit exactly that
(the evaluation endpoint answered 500 while an import wrote). The test commits a write from
another connection at that moment, as the import did.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import event, select
from voprf import ristretto

from shieldwall.blind.evaluate import Evaluator
from shieldwall.blind.tables import blind_usage
from shieldwall.store import Store


def _blinded(n: int) -> bytes:
    return b"".join(bytes(ristretto.Client.blind(f"v{i}".encode())[1].serialize())
                    for i in range(n))


def test_a_write_committed_between_the_quota_read_and_its_update(sqlite_store: Store,
                                                                tmp_path: Path) -> None:
    store = sqlite_store
    ev = Evaluator(tmp_path, store)
    assert ev("cert-east", "ally", 1, _blinded(2)).status == 200  # today's row exists
    db = str(tmp_path / "store.db")
    other: list[str] = []

    def meanwhile(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE BLIND_USAGE"):
            try:  # another process's write, committed just now
                with sqlite3.connect(db, timeout=0.2) as side:
                    side.execute("INSERT INTO blind_usage (member, day, asked, requests) "
                                 "VALUES ('cert-west', '2000-01-01', 1, 1)")
                other.append("committed")
            except sqlite3.OperationalError as exc:  # the count holds the write lock
                other.append(str(exc))

    for eng in {store.engine, store.write_engine}:
        event.listen(eng, "before_cursor_execute", meanwhile)
    try:
        answer = ev("cert-east", "ally", 1, _blinded(3))
    finally:
        for eng in {store.engine, store.write_engine}:
            event.remove(eng, "before_cursor_execute", meanwhile)
    assert other, "the quota update was never seen"
    assert answer.status == 200, answer.message
    with store.engine.connect() as conn:
        asked = conn.execute(select(blind_usage.c.asked).where(
            blind_usage.c.member == "cert-east")).scalar_one()
    assert asked == 5
