"""`shieldwall sensors export`: the active indicators as Zeek, Suricata, RPZ and CSV files."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shieldwall.cli.common import HomeOpt, console, counted, open_node

if TYPE_CHECKING:
    from shieldwall.node import Node
    from shieldwall.store import Access

app = typer.Typer(help="Export shared indicators to the member's sensors.", no_args_is_help=True)


def _sid_range(text: str) -> tuple[int, int]:
    """`1000000-1999999` -> (1000000, 1999999)."""
    from shieldwall.errors import ShieldwallError

    lo, dash, hi = text.partition("-")
    if not dash or not lo.isdigit() or not hi.isdigit() or int(lo) + 200 > int(hi) or \
            int(hi) > 4_294_967_295:
        raise ShieldwallError(f"--sid-range {text!r}: give FIRST-LAST, e.g. 1000000-1999999")
    return int(lo), int(hi)


@app.command("export")
def export(
    zeek: Annotated[Path | None, typer.Option(help="Directory for the Zeek Intel file.")] = None,
    suricata: Annotated[Path | None, typer.Option(
        help="Directory for Suricata rules, datasets and hash lists.")] = None,
    rpz: Annotated[Path | None, typer.Option(help="File for the RPZ zone.")] = None,
    csv: Annotated[Path | None, typer.Option(help="File for the plain CSV.")] = None,
    for_member: Annotated[str | None, typer.Option(
        "--for", help="Only what this registered member may read (default: this node's "
        "member).")] = None,
    tlp_max: Annotated[str, typer.Option("--tlp-max", help="Most restricted TLP exported.")]
    = "amber+strict",
    watch: Annotated[bool, typer.Option(help="Keep the files current (Ctrl-C to stop).")]
    = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --watch.")] = 5.0,
    sid_range: Annotated[str, typer.Option(help="Suricata sids to hand out.")]
    = "1000000-1999999",
    home: HomeOpt = None,
) -> None:
    """Write the active indicators (valid now, not revoked, not on a warning list) in each
    sensor's own format; what has no faithful form there is listed in skipped.tsv."""
    from shieldwall.cli.intel import _access_for, _tlp
    from shieldwall.errors import ShieldwallError
    from shieldwall.outputs.sensors.export import Exporter, Report, Targets

    targets = Targets(zeek, suricata, rpz, csv)
    if not targets.any():
        raise ShieldwallError("give at least one of --zeek DIR, --suricata DIR, --rpz FILE, "
                              "--csv FILE")
    sids = _sid_range(sid_range)
    node = open_node(home)
    try:
        access = _access_for(node, for_member) if for_member else _own_access(node)
        exporter = Exporter(node.store, targets, access, _tlp(tlp_max), sids)

        def said(report: Report) -> None:
            parts = [f"{out} {counted(n, 'value')}" for out, n in sorted(report.exported.items())]
            skipped = sum(report.skipped.values())
            console.print(f"exported: {', '.join(parts)}; {counted(skipped, 'skip')} "
                          f"listed; {counted(len(report.written), 'file')} written",
                          markup=False, highlight=False)

        if watch:
            from shieldwall.outputs.sensors.watch import watch as follow

            with contextlib.suppress(KeyboardInterrupt):
                follow(exporter, interval=interval, on_export=said)
        else:
            said(exporter.run())
    finally:
        node.close()


def _own_access(node: Node) -> Access:
    """What this node's own member may read: its TAXII view, as if it asked as itself."""
    from shieldwall.policy import Members
    from shieldwall.policy.access import access_for
    from shieldwall.policy.model import Member

    found = Members(node.store.engine).get(node.member)
    return access_for(found or Member(node.member, node.config.tier))


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="sensors")
