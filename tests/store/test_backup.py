"""Backup and restore of a whole node (`shieldwall backup` / `restore`), and `upgrade`:
restored into a fresh home the node holds the same objects, keys and config; a backup
taken during an import holds each batch whole or not at all; a changed, truncated or
misdirected backup restores nothing; a newer database is refused by older code."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from shieldwall.backup import BackupError, make_backup, restore_backup
from shieldwall.config import init_home
from shieldwall.ingest.runner import import_file
from shieldwall.keys.home import node_key
from shieldwall.node import Node
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
from shieldwall.store.migrate import current, script_head, upgrade
from tests.factories import indicator
from tests.taxii.conftest import _pg_database

CLI = str(Path(sys.executable).parent / "shieldwall")


def pg_database() -> contextlib.AbstractContextManager[str]:
    """A fresh database, dropped afterwards (the TAXII tests' own, skipping without PG)."""
    return contextlib.contextmanager(_pg_database)()


def _bundle(path: Path, n: int) -> Path:
    objs = [indicator(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(n)]
    path.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                   "objects": objs}))
    return path


def _node(root: Path, database_url: str | None = None) -> Node:
    home = root / "node"
    kw = {"database_url": database_url} if database_url else {}
    init_home(home, "cert-north", **kw)
    node = Node.load(home)
    import_file(node.store, _bundle(root / "b.json", 300), source=node.member,
                producer=node.identity(), default_tlp=TLP.AMBER)
    node_key(home, "cursor")
    (home / "telemetry" / "day=2026-12-01").mkdir(parents=True)
    (home / "telemetry" / "day=2026-12-01" / "part-0.parquet").write_bytes(b"PAR1 rows")
    return node


def _rows(url: str) -> list[tuple[str, int, str]]:
    store = Store.open(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(
                "SELECT id, version_us, json FROM objects ORDER BY id, version_us")]
    finally:
        store.close()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_restored_node_holds_what_the_backup_held(tmp_path: Path, db: str) -> None:
    with contextlib.ExitStack() as stack:
        src_url = stack.enter_context(pg_database()) if db == "postgresql" else None
        dst_url = stack.enter_context(pg_database()) if db == "postgresql" else None
        node = _node(tmp_path / "a", src_url)
        target = tmp_path / "node.backup"
        manifest = make_backup(node, target)
        assert target.stat().st_mode & 0o077 == 0  # holds the keys: its owner's alone
        assert manifest["counts"]["objects"] == 300
        before = _rows(node.config.db_url)
        node.close()

        home = tmp_path / "restored"
        done = restore_backup(target, home, database_url=dst_url)
        after = Node.load(home)
        assert after.member == "cert-north"
        assert _rows(after.config.db_url) == before
        assert done.counts == manifest["counts"]
        assert node_key(home, "cursor") == node_key(node.config.home, "cursor")
        assert (home / "keys" / "cursor.key").stat().st_mode & 0o077 == 0
        assert (home / "telemetry" / "day=2026-12-01" / "part-0.parquet").read_bytes() \
            == b"PAR1 rows"
        after.close()


def test_a_backup_taken_during_an_import_holds_whole_batches(tmp_path: Path) -> None:
    """A real import of 60,000 indicators (batches of 5,000) is backed up while it runs."""
    home = tmp_path / "node"
    subprocess.run([CLI, "init", "--home", str(home), "--member", "cert-north"], check=True,
                   capture_output=True, timeout=60)
    bundle = _bundle(tmp_path / "big.json", 60_000)
    importer = subprocess.Popen([CLI, "import", "--home", str(home), "--no-warninglists",
                                 str(bundle)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        db = home / "shieldwall.db"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                n = con.execute("SELECT count(*) FROM objects WHERE type='indicator'"
                                ).fetchone()[0]
                con.close()
                if n > 0:
                    break
            time.sleep(0.05)
        backup = subprocess.run([CLI, "backup", "--home", str(home), "--to",
                                 str(tmp_path / "mid.backup")], capture_output=True,
                                text=True, timeout=120)
        assert backup.returncode == 0, backup.stderr
        still_running = importer.poll() is None
    finally:
        importer.wait(timeout=300)
    assert importer.returncode == 0
    restore_backup(tmp_path / "mid.backup", tmp_path / "restored")
    con = sqlite3.connect(tmp_path / "restored" / "shieldwall.db")
    held = con.execute("SELECT count(*) FROM objects WHERE type='indicator'").fetchone()[0]
    con.close()
    assert held % 5_000 == 0, held
    assert 0 < held <= 60_000
    if not still_running:
        print(f"note: the import had finished by the end of the backup ({held} held)")


def test_a_changed_or_truncated_backup_restores_nothing(tmp_path: Path) -> None:
    node = _node(tmp_path / "a")
    target = tmp_path / "node.backup"
    make_backup(node, target)
    node.close()
    import tarfile

    # A member rewritten with other bytes of the same size: its hash no longer matches.
    changed = tmp_path / "changed.backup"
    with tarfile.open(target) as src, tarfile.open(changed, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "home/shieldwall.toml":
                data = data.replace(b"cert-north", b"cert-south")
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match=r"shieldwall\.toml does not match its SHA-256"):
        restore_backup(changed, tmp_path / "r1")
    assert not (tmp_path / "r1").exists()

    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    done = subprocess.run([CLI, "restore", str(truncated), "--home", str(tmp_path / "r2")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("shieldwall: error: ")
    assert not (tmp_path / "r2" / "shieldwall.toml").exists()

    with pytest.raises(BackupError, match="already holds a node"):
        restore_backup(target, node.config.home)


def test_an_older_backup_is_migrated_forward_on_restore(tmp_path: Path) -> None:
    home = tmp_path / "old"
    init_home(home, "cert-north")
    store = Store.open(f"sqlite:///{home / 'shieldwall.db'}", migrate=False)
    upgrade(store.engine, "0010")
    assert current(store.engine) == "0010"
    node = Node.load(home)
    node.__dict__["store"] = store  # the older release's node: not migrated by opening
    make_backup(node, tmp_path / "old.backup")
    store.close()
    done = restore_backup(tmp_path / "old.backup", tmp_path / "restored")
    assert (done.revision_before, done.revision_after) == ("0010", script_head())


def test_a_newer_database_is_refused_and_upgrade_reports(tmp_path: Path) -> None:
    home = tmp_path / "node"
    subprocess.run([CLI, "init", "--home", str(home), "--member", "cert-north"], check=True,
                   capture_output=True, timeout=60)
    done = subprocess.run([CLI, "upgrade", "--home", str(home)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and f"already at {script_head()}" in done.stdout
    con = sqlite3.connect(home / "shieldwall.db")
    con.execute("UPDATE alembic_version SET version_num = '9001'")
    con.commit()
    con.close()
    for command in (["stats"], ["upgrade"]):
        done = subprocess.run([CLI, *command, "--home", str(home)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1
        assert "schema revision 9001, newer than this Shieldwall knows" in done.stderr
