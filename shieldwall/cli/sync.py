"""`shieldwall sync`: pull from and push to the node's peers now (serve does it continuously)."""

from __future__ import annotations

from typing import Annotated

import typer

from shieldwall.cli.common import HomeOpt, counted, open_node, out


def sync(
    peer: Annotated[list[str] | None, typer.Option(help="Only this peer (repeat).")] = None,
    pull: Annotated[bool, typer.Option(help="Pull from peers.")] = True,
    push: Annotated[bool, typer.Option(help="Push this node's objects to peers.")] = True,
    retries: Annotated[int, typer.Option(help="Retries per peer (backoff with jitter).")] = 2,
    retro: Annotated[
        bool, typer.Option(help="Look for new indicators in the stored telemetry.")
    ] = True,
    home: HomeOpt = None,
) -> None:
    """Sync with every peer once; exit code 1 when a peer failed (see 'peer list').

    Indicators new to this node are then looked for in the telemetry it keeps, and the
    sightings found are pushed at once (serve does the same as they arrive)."""
    from rich.table import Table

    from shieldwall.errors import ShieldwallError
    from shieldwall.federation import Federation

    node = open_node(home)
    if not node.config.peers:
        raise ShieldwallError("this node has no peers; add one with 'shieldwall peer add'")
    fed = Federation(node.config.home, node.store)
    try:
        results = fed.sync_all(peer, pull=pull, push=push, retries=retries)
        found = None
        if retro:
            import os

            from shieldwall.blind.hits import HANDLE_PROPERTY
            from shieldwall.blind.retro import ArrivedSets
            from shieldwall.cli.blind import sender
            from shieldwall.detect.arrivals import hunt_arrivals

            # The allies' blind sets that arrived too, resolved with their owners.
            blind = ArrivedSets(lambda owner: sender(node, owner),
                                processes=os.cpu_count() or 1)
            found = hunt_arrivals(node.store, node.config.home / "telemetry",
                                  member=node.member, identity=node.identity(),
                                  sighting_tlp=node.config.sighting_tlp_level, blind=blind)
            if found.objects and push:
                for again in fed.sync_all(peer, pull=False, push=True, retries=retries):
                    for r in results:
                        if r.peer == again.peer:
                            r.pushed += again.pushed
    finally:
        fed.close()
    table = Table("peer", "pulled", "pushed", "refused", "rejected", "error")
    for r in results:
        table.add_row(r.peer, f"{r.pulled:,}", f"{r.pushed:,}", f"{r.refused:,}",
                      f"{r.rejected:,}", f"[red]{r.error}[/]" if r.error else "")
    out.print(table)
    blind_sightings = sum(1 for o in found.objects if HANDLE_PROPERTY in o) if found else 0
    if found is not None and found.indicators:
        out.print(f"retro-hunt: {counted(found.indicators, 'new indicator')} in stored "
                  f"telemetry, {counted(found.hits - found.blind_hits, 'hit')}, "
                  f"{counted(found.sightings - blind_sightings, 'sighting')} recorded")
    if found is not None and found.blind_sets:
        out.print(f"retro-hunt: {counted(found.blind_sets, 'new blind set')} of allies in "
                  f"stored telemetry, {counted(found.blind_hits, 'blind hit')}, "
                  f"{counted(blind_sightings, 'sighting')} for their owners only")
        for why in dict.fromkeys(found.blind_failed.values()):
            out.print(f"not matched against the blind set of {why}", markup=False,
                      highlight=False, emoji=False, soft_wrap=True)
    if any(r.error for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(sync)
