"""Backing up a node and restoring it into a new home.

A backup is one tar file an operator can open with `tar`: `manifest.json` (what was backed
up, from which schema revision, with a SHA-256 per file and the store's counts),
`home/...` (the config, the node's keys, custody heads, and by default the stored
telemetry) and `database/` (the store's consistent copy: SQLite's online backup, or a
`pg_dump` custom-format file; see `store.backup`). Restoring checks every file's hash
before anything is written, refuses a home that already holds a node, restores the
database, migrates it forward if the backup is older than this Shieldwall, and compares
the restored store's counts with the manifest's.

The file holds the node's secret keys: it is written readable by its owner alone, and
belongs where the operator keeps other secrets (docs/operate.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shieldwall.errors import ShieldwallError
from shieldwall.store.backup import PG_NAME, SQLITE_NAME, is_sqlite, put_back, snapshot

FORMAT = 1
MANIFEST = "manifest.json"
# What a home holds that is not worth keeping: the live database (copied by the store's own
# means), its journals, and caches that are rebuilt.
_SKIP_NAMES = {SQLITE_NAME, f"{SQLITE_NAME}-wal", f"{SQLITE_NAME}-shm",
               f"{SQLITE_NAME}-journal"}
_SKIP_DIRS = {"cache", "__pycache__"}


class BackupError(ShieldwallError):
    """A backup that cannot be made or restored; the message says which file and why."""


@dataclass
class Restored:
    home: Path
    revision_before: str | None
    revision_after: str | None
    counts: dict[str, int]
    files: int


# What a restore must find again: versions, objects and tags held by the store.
_COUNTS = {"versions": "SELECT count(*) FROM objects",
           "objects": "SELECT count(*) FROM objects WHERE is_latest",
           "tags": "SELECT count(*) FROM tags"}
_REVISION = "SELECT max(version_num) FROM alembic_version"


def counts(store: Any) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {name: int(conn.exec_driver_sql(sql).scalar_one())
                for name, sql in _COUNTS.items()}


def _home_files(home: Path, telemetry: bool) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(home):
        rel_root = Path(root).relative_to(home)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS
                         and not (rel_root == Path(".") and d == "telemetry" and not telemetry))
        for name in sorted(files):
            path = Path(root) / name
            if rel_root == Path(".") and name in _SKIP_NAMES:
                continue
            if path.is_file() and not path.is_symlink():
                out.append(path)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def make_backup(node: Any, target: Path, *, telemetry: bool = True) -> dict[str, Any]:
    """Write `node`'s backup to `target` (a new file); the manifest written."""
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file")
    home: Path = node.config.home
    url: str = node.config.db_url
    with tempfile.TemporaryDirectory(prefix="shieldwall-backup-") as tmp:
        # The database first: the keys and config copied after it are at least as new.
        copy, found = snapshot(url, Path(tmp), {**_COUNTS, "revision": _REVISION})
        members = [(f"database/{copy.name}", copy)]
        members += [(f"home/{p.relative_to(home).as_posix()}", p)
                    for p in _home_files(home, telemetry)]
        manifest = {
            "format": FORMAT,
            "member": node.member,
            "database": "sqlite" if is_sqlite(url) else "postgresql",
            "revision": found.pop("revision"),
            "counts": {name: int(value) for name, value in found.items()},
            "telemetry": telemetry,
            "files": {name: {"sha256": _sha256(p), "size": p.stat().st_size}
                      for name, p in members},
        }
        partial = target.with_name(f".{target.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
                data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
                for name, path in members:
                    tar.add(path, arcname=name, recursive=False)
            partial.rename(target)  # a backup that exists is a whole one
        finally:
            partial.unlink(missing_ok=True)
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    try:
        with tarfile.open(source, mode="r:*") as tar:
            member = tar.getmember(MANIFEST)
            fh = tar.extractfile(member)
            if fh is None or member.size > 16 << 20:
                raise BackupError(f"{source}: its manifest is not a file of a sane size")
            manifest = orjson.loads(fh.read())
    except (OSError, tarfile.TarError, KeyError, EOFError) as exc:
        raise BackupError(f"{source}: not a Shieldwall backup ({exc})") from None
    except orjson.JSONDecodeError:
        raise BackupError(f"{source}: its manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: not a backup this Shieldwall reads (format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else '?'})")
    return manifest


def restore_backup(source: Path, home: Path, *, database_url: str | None = None) -> Restored:
    """Restore the backup `source` into the new home `home` (see the module's docstring)."""
    from shieldwall.config import CONFIG_NAME, load_config
    from shieldwall.store import Store
    from shieldwall.store.migrate import current

    manifest = read_manifest(source)
    if (home / CONFIG_NAME).exists():
        raise BackupError(f"{home} already holds a node; restore into a new home")
    expected: dict[str, dict[str, Any]] = manifest.get("files") or {}
    with tempfile.TemporaryDirectory(prefix="shieldwall-restore-") as tmp:
        staged = _extract_checked(source, Path(tmp), expected)
        db = next((p for n, p in staged.items() if n.startswith("database/")), None)
        if db is None:
            raise BackupError(f"{source}: holds no database")
        if database_url is None and db.name == PG_NAME:
            raise BackupError(f"{source}: a PostgreSQL backup; give --database-url of an "
                              "empty database to restore into")
        home.mkdir(parents=True, exist_ok=True)
        for name, path in staged.items():
            if name.startswith("home/"):
                dest = home / name[len("home/"):]
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.replace(path, dest)
        config = load_config(home)
        # The database goes where the operator says, else into the new home (a SQLite file
        # named elsewhere by the old config would be the old node's own).
        if database_url != config.database_url:
            config.database_url = database_url
            config.save()
        put_back(db, config.db_url)
    store = Store.open(config.db_url, migrate=False)
    try:
        before = current(store.engine)
        store.migrate()  # a backup from an older Shieldwall is brought forward here
        after = current(store.engine)
        found = counts(store)
    finally:
        store.close()
    if found != manifest.get("counts"):
        raise BackupError(f"restored store holds {found}, the backup says "
                          f"{manifest.get('counts')}: the restore is not to be trusted")
    return Restored(home, before, after, found, len(staged))


def _extract_checked(source: Path, into: Path,
                     expected: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Every member the manifest names, extracted under `into` and its hash checked; a
    member that is not a plain file, is not named, or escapes its folder is refused."""
    out: dict[str, Path] = {}
    try:
        with tarfile.open(source, mode="r:*") as tar:
            for member in tar:
                if member.name == MANIFEST:
                    continue
                want = expected.get(member.name)
                if want is None or not member.isfile() or member.size != want.get("size"):
                    raise BackupError(f"{source}: {member.name} is not in the manifest as "
                                      "stored; the backup was changed")
                tar.extract(member, into, filter="data")  # no links, no paths out of `into`
                path = into / member.name
                if _sha256(path) != want.get("sha256"):
                    raise BackupError(f"{source}: {member.name} does not match its "
                                      "SHA-256 in the manifest; the backup was changed")
                out[member.name] = path
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{source}: cannot be read whole ({exc})") from None
    missing = sorted(set(expected) - set(out))
    if missing:
        raise BackupError(f"{source}: {missing[0]} is missing ({len(missing)} files); "
                          "the backup is truncated")
    return out
