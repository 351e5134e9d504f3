"""Operating a node: backup, restore, upgrade (docs/operate.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shieldwall.cli.common import HomeOpt, counted, open_node, out


def backup(
    to: Annotated[Path, typer.Option("--to", help="The backup file to write (new).")],
    home: HomeOpt = None,
    telemetry: Annotated[
        bool, typer.Option(help="Include the stored telemetry (Parquet) of the home.")
    ] = True,
) -> None:
    """Back up the node: its database (a consistent copy, also during an import), config
    and keys, in one tar file readable by its owner alone."""
    from shieldwall.backup import make_backup

    node = open_node(home)
    try:
        manifest = make_backup(node, to.expanduser().resolve(), telemetry=telemetry)
    finally:
        node.close()
    c = manifest["counts"]
    out.print(f"backed up {node.member} to {to}: {counted(c['objects'], 'object')} "
              f"({counted(c['versions'], 'version')}), {manifest['database']} at schema "
              f"{manifest['revision']}, {counted(len(manifest['files']), 'file')}")


def restore(
    source: Annotated[Path, typer.Argument(help="A file written by 'shieldwall backup'.")],
    home: HomeOpt = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL: an empty database to restore into (SQLAlchemy URL)."),
    ] = None,
) -> None:
    """Restore a backup into a new home, check every file and the store's counts against
    the backup, and migrate the database forward if the backup is older."""
    from shieldwall.backup import restore_backup
    from shieldwall.config import resolve_home

    done = restore_backup(source.expanduser().resolve(), resolve_home(home),
                          database_url=database_url)
    moved = ("" if done.revision_before == done.revision_after
             else f", migrated {done.revision_before} -> {done.revision_after}")
    out.print(f"restored into {done.home}: {counted(done.counts['objects'], 'object')} "
              f"({counted(done.counts['versions'], 'version')}), "
              f"{counted(done.files, 'file')} checked{moved}")


def upgrade(home: HomeOpt = None) -> None:
    """Migrate the node's database to this Shieldwall's schema in place (Alembic); a
    database written by a newer Shieldwall is refused."""
    from shieldwall.config import load_config, resolve_home
    from shieldwall.store import Store
    from shieldwall.store.migrate import current, script_head

    config = load_config(resolve_home(home))
    store = Store.open(config.db_url, migrate=False)
    try:
        before = current(store.engine)
        store.migrate()
        after = current(store.engine)
    finally:
        store.close()
    if before == after:
        out.print(f"schema already at {after} (this Shieldwall's newest: {script_head()})")
    else:
        out.print(f"schema migrated {before or 'empty'} -> {after}")


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
    app.command()(upgrade)
