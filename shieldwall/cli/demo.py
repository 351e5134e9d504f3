"""`shieldwall demo`: what `make demo` runs.

Until the alliance demo (several nodes) exists, the demo is the single-node story:
initialise a node, import the bundled real intelligence, show what the node holds.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from shieldwall.cli.common import console, out

DATA = Path(__file__).resolve().parent.parent / "data"


def bundled_intel() -> list[Path]:
    """Real public intelligence shipped with Shieldwall (see NOTICE for sources)."""
    found = []
    for sub in ("stix", "misp", "ioc"):
        folder = DATA / sub
        if folder.is_dir():
            found.extend(sorted(p for p in folder.iterdir() if p.is_file()
                                and p.suffix in (".json", ".csv", ".txt")))
    return found


def demo(
    home: Annotated[Path | None, typer.Option("--home", help="Keep the node here.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Play, print the outcome, exit.")] = False,
) -> None:
    """Set up a node and import the bundled real intelligence."""
    from shieldwall.cli.intel import _render_import, _warninglist_flagger, render_stats
    from shieldwall.config import init_home
    from shieldwall.ingest.runner import import_file
    from shieldwall.node import Node
    from shieldwall.store import Provenance

    temp = home is None
    path = Path(tempfile.mkdtemp(prefix="shieldwall-demo-")) if temp else home.resolve()
    if (path / "shieldwall.toml").exists():
        node = Node.load(path)
    else:
        node = Node(init_home(path, "demo-cert"))
        node.store.put(node.identity(), Provenance(node.member, "local"))
    console.print(f"[bold]Shieldwall demo[/]: node [bold]{node.member}[/] at {path}")
    flagger = _warninglist_flagger()
    reports = []
    for f in bundled_intel():
        console.print(f"importing {f.relative_to(DATA)}")
        reports.append(import_file(
            node.store, f, source=node.member, producer=node.identity(),
            default_tlp=node.config.default_tlp_level, flagger=flagger,
        ))
    _render_import(reports)
    render_stats(node.store.stats(), len(node.store.tagged("warninglist")),
                 title=f"What node {node.member} now holds")
    node.close()
    if temp and once:
        shutil.rmtree(path, ignore_errors=True)
    else:
        out.print(f"node home: {path} (try: shieldwall --home {path} search 'Poison Ivy')")


def register(app: typer.Typer) -> None:
    app.command()(demo)
