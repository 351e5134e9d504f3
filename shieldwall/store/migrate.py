"""Alembic, driven from code: a node upgraded to a newer Shieldwall migrates in place.

Every command opens the store, and a store already at the newest revision is the rule:
that is checked without Alembic (its import and script scan cost ~0.13 s, a fifth of
`shieldwall stats`), which is imported only when there is something to upgrade.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

_HERE = Path(__file__).parent / "migrations"
_REVISION_RE = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_RE = re.compile(r"^down_revision\s*(?::[^=]*)?=(.*)$", re.M)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    return cfg


def script_head() -> str | None:
    """The newest revision, read from the scripts' `revision` and `down_revision` lines;
    None unless there is exactly one head (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_HERE / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION_RE.search(source)
        if found:
            revisions.add(found.group(1))
        down = _DOWN_RE.search(source)
        if down:
            parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at(engine: Engine, revision: str | None) -> bool:
    if revision is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:  # no version table yet: a new database
        return False
    return [r[0] for r in rows] == [revision]


def known_revisions() -> set[str]:
    """Every revision this Shieldwall's migrations know."""
    found = set()
    for path in (_HERE / "versions").glob("*.py"):
        match = _REVISION_RE.search(path.read_text(encoding="utf-8"))
        if match:
            found.add(match.group(1))
    return found


def _stored_revisions(engine: Engine) -> list[str]:
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    except SQLAlchemyError:  # no version table yet: a new database
        return []


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate in place; refuse a database a newer Shieldwall wrote (older code would
    misread, or write without, the tables it added)."""
    if revision == "head" and _at(engine, script_head()):
        return
    unknown = sorted(set(_stored_revisions(engine)) - known_revisions())
    if unknown:
        from shieldwall.store.store import StoreError

        raise StoreError(f"the database is at schema revision {unknown[0]}, newer than this "
                         f"Shieldwall knows (newest {script_head()}): run the Shieldwall "
                         "release that wrote it, or a newer one")
    from alembic import command

    cfg = alembic_config()
    # A write transaction, so two processes opening one new SQLite home do not race.
    with engine.connect().execution_options(shieldwall_write=True) as conn:
        conn.begin()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
