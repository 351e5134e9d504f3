"""`shieldwall sync`: pull from and push to the node's peers now (serve does it continuously)."""

from __future__ import annotations

from typing import Annotated

import typer

from shieldwall.cli.common import HomeOpt, open_node, out


def sync(
    peer: Annotated[list[str] | None, typer.Option(help="Only this peer (repeat).")] = None,
    pull: Annotated[bool, typer.Option(help="Pull from peers.")] = True,
    push: Annotated[bool, typer.Option(help="Push this node's objects to peers.")] = True,
    retries: Annotated[int, typer.Option(help="Retries per peer (backoff with jitter).")] = 2,
    home: HomeOpt = None,
) -> None:
    """Sync with every peer once; exit code 1 when a peer failed (see 'peer list')."""
    from rich.table import Table

    from shieldwall.errors import ShieldwallError
    from shieldwall.federation import Federation

    node = open_node(home)
    if not node.config.peers:
        raise ShieldwallError("this node has no peers; add one with 'shieldwall peer add'")
    fed = Federation(node.config.home, node.store)
    try:
        results = fed.sync_all(peer, pull=pull, push=push, retries=retries)
    finally:
        fed.close()
    table = Table("peer", "pulled", "pushed", "refused", "rejected", "error")
    for r in results:
        table.add_row(r.peer, f"{r.pulled:,}", f"{r.pushed:,}", f"{r.refused:,}",
                      f"{r.rejected:,}", f"[red]{r.error}[/]" if r.error else "")
    out.print(table)
    if any(r.error for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(sync)
