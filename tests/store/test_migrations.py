"""A node upgraded to a newer Shieldwall migrates its database in place."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from shieldwall.stix.timestamps import now_us
from shieldwall.store import Provenance, Store
from shieldwall.store.migrate import alembic_config, current, upgrade
from shieldwall.store.prepare import prepare
from tests.factories import indicator


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()  # type: ignore[return-value]


def test_fresh_store_is_at_head_and_reopening_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    s = Store.open(url)
    s.put(indicator(), Provenance("x"))
    s.close()
    s = Store.open(url)
    assert current(s.engine) == _head()
    assert s.stats()["objects"] == 1
    s.close()


def _holding_one_indicator_at(tmp_path: Path, revision: str) -> tuple[str, dict]:
    """A store left at an older `revision`, holding one indicator: what an upgrade meets."""
    url = f"sqlite:///{tmp_path / f'at-{revision}.db'}"
    engine = create_engine(url)
    upgrade(engine, revision)
    assert current(engine) == revision
    ind = indicator()
    # Written as that revision's code did: its columns only (the current write path
    # fills columns later revisions added).
    p = prepare(ind, now_us())
    row = {"id": p.id, "type": p.type, "spec_version": p.spec_version,
           "version_us": p.version_us, "date_added_us": 1, "is_latest": True,
           "revoked": False, "tlp": p.tlp, "created_by_ref": p.created_by_ref, "name": p.name,
           "source": "x", "channel": "taxii", "collection": None, "json": p.text}
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO objects ({', '.join(row)}) "
                          f"VALUES ({', '.join(':' + k for k in row)})"), row)
    engine.dispose()
    return url, ind


def test_store_created_at_first_revision_upgrades_in_place_keeping_data(tmp_path: Path) -> None:
    url, ind = _holding_one_indicator_at(tmp_path, "0001")
    new = Store.open(url)
    assert current(new.engine) == _head()
    assert new.get(ind["id"]) is not None
    new.close()


def test_upgrade_to_0008_drops_unused_indexes_and_keeps_rows(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    url, ind = _holding_one_indicator_at(tmp_path, "0007")
    old = create_engine(url)
    names = {ix["name"] for ix in inspect(old).get_indexes("objects")}
    assert {"ix_objects_created_by", "ix_objects_name"} <= names
    old.dispose()
    new = Store.open(url)
    names = {ix["name"] for ix in inspect(new.engine).get_indexes("objects")}
    assert "ix_objects_created_by" not in names and "ix_objects_name" not in names
    assert {"ix_objects_type_seq", "ix_objects_latest_seq", "ix_objects_date_added"} <= names
    assert new.get(ind["id"]) is not None
    new.put(indicator(), Provenance("x"))
    assert new.stats()["objects"] == 2
    new.close()


def test_upgrade_to_0009_indexes_relationship_ends(tmp_path: Path) -> None:
    url, ind = _holding_one_indicator_at(tmp_path, "0008")
    new = Store.open(url)
    names = {r[0] for r in new._fetch(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'objects'", [])}
    assert {"ix_objects_rel_source_ref", "ix_objects_rel_target_ref"} <= names
    rel = dict(indicator(), type="relationship", id=ind["id"].replace("indicator", "relationship"),
               relationship_type="indicates", source_ref=ind["id"],
               target_ref="malware--4b7f0e2c-6d9f-4c59-a9a1-1d7b8d3f6c21")
    for key in ("pattern", "pattern_type", "valid_from", "indicator_types", "name"):
        rel.pop(key, None)
    new.put(rel, Provenance("x"))
    assert [r.id for r in new.linked([ind["id"]])] == [rel["id"]]
    new.close()
