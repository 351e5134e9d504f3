"""`shieldwall case publish`: a case's findings become the alliance's intelligence."""

from __future__ import annotations

from typing import Annotated

import typer

from shieldwall.cli.case import CaseArg, _open, case_app, parse_tlp, split
from shieldwall.cli.common import HomeOpt, counted, open_node, out


@case_app.command("publish")
def publish(case_id: CaseArg,
            tlp: Annotated[str, typer.Option(
                help="The TLP of what is published (RED is refused).")] = "green",
            only: Annotated[list[str] | None, typer.Option(
                "--only", help="Publish only these observables (TYPE:VALUE; repeat).")] = None,
            home: HomeOpt = None) -> None:
    """Publish the case's observables as indicators, with a report of the findings, at the
    TLP the team chose; again later: new versions of the same objects. Every node that
    receives them looks for them in the telemetry it keeps (docs/respond.md)."""
    from shieldwall.respond.publish import publish as run

    level = parse_tlp(tlp)
    node = open_node(home)
    try:
        case, _ = _open(node, case_id)
        done = run(node.store, node.member, node.identity(), case, tlp=level,
                   only=split(only) if only else None)
    finally:
        node.close()
    for ind in done.indicators:
        out.print(f"indicator {ind['name']} ({ind['id']})", markup=False, highlight=False,
                  soft_wrap=True)
    for text, why in done.skipped:
        out.print(f"skipped {text}: {why}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"published at TLP:{level.name.replace('_', '+')}: "
              f"{counted(len(done.indicators), 'indicator')} and a report "
              f"({counted(done.written, 'object')} written, {done.unchanged} unchanged)",
              soft_wrap=True)


def register(app: typer.Typer) -> None:  # the `case` group is registered by cli/case.py
    pass
