"""Assessment commands: `attribute`, `severity`, `consult show|decide`.

Thin: parse, call `shieldwall.assess`, render. Heavy imports stay inside the commands so
`shieldwall --help` stays instant.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, console, open_node, out


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _print_json(data: Any) -> None:
    import orjson

    out.print(orjson.dumps(data).decode(), soft_wrap=True, highlight=False)


def _node_if_any(home: Any, *, required: bool) -> Any:
    """The node, when the ranking needs it or one is set up here: without one, the
    ranking is ATT&CK's alone (no stored links, no confirmed cases)."""
    from shieldwall.errors import ShieldwallError

    try:
        return open_node(home)
    except (ShieldwallError, OSError):
        if required:
            raise
        return None


def attribute(
    techniques: Annotated[list[str] | None, typer.Option(
        "--techniques", "-t", help="Observed ATT&CK technique ids, comma-separated "
        "(T1566.001,T1059.005).")] = None,
    software: Annotated[list[str] | None, typer.Option(
        "--software", "-s", help="Observed ATT&CK software ids (S0366).")] = None,
    infrastructure: Annotated[list[str] | None, typer.Option(
        "--infrastructure", help="Observed IPs, domains, certificate or file hashes.")] = None,
    incident: Annotated[str | None, typer.Option(
        "--incident", help="Read the evidence from this incident or campaign in the node.")]
        = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    stix: Annotated[bool, typer.Option(
        "--stix", help="Print the attributed-to relationships (needs --incident).")] = False,
    limit: Annotated[int, typer.Option(help="Candidates to show.")] = 5,
    home: HomeOpt = None,
) -> None:
    """Rank candidate intrusion sets for observed behaviour. An assessment, never a fact."""
    from shieldwall.assess.attribution import (
        attributed_to,
        evidence_from_store,
        rank,
        resolve_evidence,
    )

    evidence, unknown = resolve_evidence(_split(techniques), _split(software),
                                         _split(infrastructure))
    links: dict[str, set[str]] = {}
    confirmed: dict[str, Any] = {}
    node = _node_if_any(home, required=bool(incident or evidence.infrastructure))
    if node is not None:
        from shieldwall.assess.confirmed import confirmed_evidence
        from shieldwall.assess.infrastructure import infrastructure_links
        from shieldwall.cli.case import case_access

        try:
            # The alliance's confirmed cases count as this node's member may read them.
            confirmed = confirmed_evidence(node.store, case_access(node),
                                           exclude=[incident] if incident else [])
            if incident:
                stored, more_unknown = evidence_from_store(node.store, incident)
                evidence, unknown2 = resolve_evidence(
                    evidence.techniques + stored.techniques,
                    evidence.software + stored.software,
                    evidence.infrastructure + stored.infrastructure)
                unknown += more_unknown + unknown2
            # The operator's own view: every link the node holds counts.
            links = infrastructure_links(node.store, evidence.infrastructure)
        finally:
            node.close()
    if not (evidence.techniques or evidence.software or links or (
            confirmed and evidence.infrastructure)):
        from shieldwall.assess.attribution import AttributionError

        raise AttributionError(
            "no known ATT&CK technique or software id to rank on"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            + "; give --techniques T1566.001,... or --software S0366")
    result = rank(evidence, limit=limit, unknown=unknown, infrastructure_links=links,
                  confirmed=confirmed)
    if unknown:
        console.print(f"[yellow]ignored unknown ids:[/] {', '.join(unknown)}")
    if stix:
        _print_json({"type": "bundle", "objects": attributed_to(result, incident)})
        return
    if as_json:
        _print_json(result.as_json())
        return
    from rich.table import Table

    table = Table(title="Candidate intrusion sets (assessment, not fact)")
    for col in ("rank", "group", "score", "confidence", "actor type", "shared", "missing"):
        table.add_column(col)
    for i, c in enumerate(result.candidates, 1):
        table.add_row(str(i), f"{c.group} ({c.attack_id})", f"{c.score:.3f}",
                      f"{c.confidence:.2f}", c.actor_type, ", ".join(c.shared),
                      ", ".join(c.missing[:5]))
    out.print(table)
    out.print(f"verdict: [bold]{result.verdict}[/]")


def register(app: typer.Typer) -> None:
    app.command()(attribute)
