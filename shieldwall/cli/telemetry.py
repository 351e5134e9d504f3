"""`shieldwall telemetry summarise`: the per-day summaries a summary-first retro-hunt reads."""

from __future__ import annotations

from typing import Annotated

import typer

from shieldwall.cli.common import HomeOpt, console, counted, open_node

telemetry_app = typer.Typer(help="The telemetry kept for retro-hunts (Parquet by day).",
                            no_args_is_help=True)


@telemetry_app.command("summarise")
def summarise(
    compact: Annotated[bool, typer.Option(
        help="Merge each day's summaries into one sorted file.")] = True,
    home: HomeOpt = None,
) -> None:
    """Build the summaries of telemetry kept without them and merge each day's into one.

    A hunt writes a summary beside every Parquet file it keeps, and a retro-hunt builds the
    missing ones of the days it reads; this does it for every day at once (after an upgrade,
    or for Parquet another tool wrote) and compacts them, so a retro-hunt reads one file a
    day."""
    from shieldwall.detect import summaries

    node = open_node(home)
    root = node.config.home / "telemetry"
    node.close()
    days = summaries.day_dirs(root)
    built = merged = 0
    for day in days:
        built += summaries.ensure(root, [day])
        if compact:
            merged += summaries.compact(root, day)
    console.print(f"{counted(len(days), 'day')}: {counted(built, 'event file')} summarised, "
                  f"{counted(merged, 'summary file')} merged")


def register(app: typer.Typer) -> None:
    app.add_typer(telemetry_app, name="telemetry")
