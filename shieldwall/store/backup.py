"""A consistent copy of a store's database, and putting one back.

SQLite: the online backup API copies every page in one read transaction, so a copy taken
while an import writes holds each batch whole or not at all (a batch is one transaction)
and the importer is not stopped. PostgreSQL: `pg_dump` in its custom format, which takes
one snapshot for the whole dump, and `pg_restore`; the files are the ones every PostgreSQL
operator already knows how to read, move and restore by hand.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shieldwall.store.store import StoreError

SQLITE_NAME = "shieldwall.db"
PG_NAME = "postgresql.dump"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///PATH` URL."""
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or ":memory:" in path:
        raise StoreError(f"not a SQLite database file: {url}")
    return Path(path.split("?", 1)[0])


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (`postgresql+psycopg://` -> `postgresql://`)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def pg_schema(url: str) -> str | None:
    """The schema a node's URL confines it to (`options=-csearch_path=S`), if any."""
    for option in parse_qs(urlsplit(url).query).get("options", []):
        for word in unquote(option).split():
            if word.startswith("-csearch_path="):
                return word.split("=", 1)[1].split(",")[0].strip('"')
    return None


def snapshot(url: str, folder: Path,
             queries: Mapping[str, str]) -> tuple[Path, dict[str, Any]]:
    """Write a consistent copy of the database at `url` into `folder`: its path, and the
    first value of each of `queries` (name -> SQL) as the copy holds it, read in the same
    snapshot (a manifest's counts must describe the copy, not the store a moment later)."""
    folder.mkdir(parents=True, exist_ok=True)
    if is_sqlite(url):
        source = sqlite_path(url)
        if not source.is_file():
            raise StoreError(f"no database at {source}")
        target = folder / SQLITE_NAME
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            found = {name: dst.execute(sql).fetchone()[0] for name, sql in queries.items()}
        finally:
            dst.close()
            src.close()
        return target, found
    import psycopg

    target = folder / PG_NAME
    args = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
            f"--file={target}"]
    schema = pg_schema(url)
    if schema:
        args.append(f"--schema={schema}")
    # pg_dump reads the snapshot this transaction exports, so the counts read here are the
    # dump's own, however the node writes meanwhile.
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
        found = {}
        for name, sql in queries.items():
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            found[name] = row[0] if row else None
        _run([*args, f"--snapshot={exported[0] if exported else ''}",
              f"--dbname={_without_options(url)}"], "pg_dump")
        conn.rollback()
    return target, found


def put_back(copy: Path, url: str) -> None:
    """Restore `copy` (made by `snapshot`) as the database at `url`, which must be new:
    a SQLite file that does not exist yet, or a PostgreSQL database (or schema) that holds
    no Shieldwall tables."""
    if is_sqlite(url):
        target = sqlite_path(url)
        if target.exists():
            raise StoreError(f"{target} exists; restore into a new home")
        if copy.name != SQLITE_NAME:
            raise StoreError(f"{copy.name}: a PostgreSQL dump restores into PostgreSQL; "
                             "give --database-url")
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise StoreError(f"{copy.name}: the database in the backup is damaged")
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
            src.close()
        return
    if copy.name != PG_NAME:
        raise StoreError(f"{copy.name}: a SQLite backup restores into a SQLite home; leave "
                         "out --database-url")
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
          f"--dbname={_without_options(url)}", str(copy)], "pg_restore")


def _without_options(url: str) -> str:
    """libpq's URL without the search_path option (pg_dump selects the schema itself)."""
    parts = urlsplit(libpq_url(url))
    return parts._replace(query="").geturl()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StoreError(f"{name} not found: install PostgreSQL's client tools "
                         "(Debian: postgresql-client) to back up or restore PostgreSQL")
    return found


def _run(args: list[str], name: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise StoreError(f"{name} failed: {why}")
