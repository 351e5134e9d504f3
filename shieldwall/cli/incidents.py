"""`shieldwall incident open|update|show|list`: a member's incident reports.

Thin: parse, call `shieldwall.assess.incidents`, render.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, console, open_node, out

incident_app = typer.Typer(help="Report incidents (STIX incident + OASIS Incident Core).",
                           no_args_is_help=True)

_List = list[str] | None


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _counts(values: list[str] | None) -> dict[str, int] | None:
    """`organizations=3,information-systems=40` -> {"organizations": 3, ...}."""
    from shieldwall.assess.incidents import IncidentError

    if not values:
        return None
    counts: dict[str, int] = {}
    for item in _split(values):
        key, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            raise IncidentError(f"impacted {item!r}: write ENTITY=COUNT, e.g. organizations=3")
        counts[key.strip()] = int(n)
    return counts


def _severity(factors: list[str] | None, recoverability: str | None = None) -> Any:
    """`--factor functional_impact=significant` (repeatable) -> an NCISS score, or None.
    The incident's own `--recoverability` answers NCISS's recoverability factor unless a
    `--factor recoverability=...` says otherwise (`not-applicable` stays imputed)."""
    if not factors:
        return None
    from shieldwall.assess.severity import SeverityError, score_incident

    answers: dict[str, str | None] = {}
    for item in _split(factors):
        key, sep, value = item.partition("=")
        if not sep:
            raise SeverityError(f"factor {item!r}: write NAME=ANSWER")
        answers[key.strip()] = value.strip()
    if recoverability and recoverability != "not-applicable":
        answers.setdefault("recoverability", recoverability)
    return score_incident(answers)


def _fields(**kw: Any) -> Any:
    from shieldwall.assess.incidents import IncidentFields

    return IncidentFields(
        name=kw["name"], description=kw["description"], sector=kw["sector"],
        determination=kw["determination"], investigation_status=kw["status"],
        recoverability=kw["recoverability"], criticality=kw["criticality"],
        incident_types=_split(kw["types"]) or None,
        impacted_entity_counts=_counts(kw["impacted"]), first_seen=kw["first_seen"],
        techniques=_split(kw["techniques"]), sighting_refs=_split(kw["sightings"]),
        indicator_refs=_split(kw["indicators"]), observed_data_refs=_split(kw["observed"]),
        observables=_split(kw["observables"]),
    )


def _print_json(data: Any) -> None:
    import orjson

    out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), soft_wrap=True,
              highlight=False)


Name = Annotated[str | None, typer.Option("--name", help="Short title.")]
Desc = Annotated[str | None, typer.Option("--description")]
Sector = Annotated[str | None, typer.Option(
    "--sector", help="Your sector (energy, healthcare, government-national, ...).")]
Determination = Annotated[str | None, typer.Option(
    "--determination", help="suspected, successful-attempt, failed-attempt, blocked, "
    "low-value, false-positive.")]
Status = Annotated[str | None, typer.Option("--status", help="new, open, closed.")]
Recover = Annotated[str | None, typer.Option(
    "--recoverability", help="regular, supplemented, extended, not-recoverable, "
    "not-applicable.")]
Crit = Annotated[int | None, typer.Option("--criticality", help="0-100.")]
Types = Annotated[_List, typer.Option("--type", help="Incident types (ransomware, ...).")]
Impacted = Annotated[_List, typer.Option(
    "--impacted", help="Impacted entity counts: organizations=3,information-systems=40.")]
FirstSeen = Annotated[str | None, typer.Option("--first-seen", help="STIX timestamp.")]
Techniques = Annotated[_List, typer.Option("--technique", "-t", help="ATT&CK ids.")]
Sightings = Annotated[_List, typer.Option("--sighting", help="Sighting ids.")]
Indicators = Annotated[_List, typer.Option("--indicator", help="Indicator ids.")]
Observed = Annotated[_List, typer.Option("--observed-data", help="Observed-data ids.")]
Observables = Annotated[_List, typer.Option(
    "--observable", help="TYPE:VALUE, e.g. ipv4-addr:198.51.100.7, file:SHA-256=<hex>.")]
Factors = Annotated[_List, typer.Option(
    "--factor", help="NCISS factor answers NAME=ANSWER; scores the incident.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the STIX incident.")]


@incident_app.command("open")
def open_(name: Name = None, description: Desc = None, sector: Sector = None,
          determination: Determination = None, status: Status = None,
          recoverability: Recover = None, criticality: Crit = None, types: Types = None,
          impacted: Impacted = None, first_seen: FirstSeen = None,
          techniques: Techniques = None, sightings: Sightings = None,
          indicators: Indicators = None, observed: Observed = None,
          observables: Observables = None, factors: Factors = None,
          tlp: Annotated[str | None, typer.Option(help="TLP (default: the node's).")] = None,
          as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Open an incident as this node's member; it federates like any other object."""
    from shieldwall.assess.incidents import open_incident
    from shieldwall.stix.markings import TLP

    fields = _fields(**locals())
    node = open_node(home)
    try:
        level = TLP.parse(tlp or node.config.default_tlp)
        inc = open_incident(node.store, node.member, node.identity_id, fields, tlp=level,
                            severity=_severity(factors, recoverability))
    finally:
        node.close()
    if as_json:
        _print_json(inc)
    else:
        out.print(inc["id"])


@incident_app.command()
def update(incident_id: Annotated[str, typer.Argument(help="incident--<uuid>")],
           name: Name = None, description: Desc = None, sector: Sector = None,
           determination: Determination = None, status: Status = None,
           recoverability: Recover = None, criticality: Crit = None, types: Types = None,
           impacted: Impacted = None, first_seen: FirstSeen = None,
           techniques: Techniques = None, sightings: Sightings = None,
           indicators: Indicators = None, observed: Observed = None,
           observables: Observables = None, factors: Factors = None,
           as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Write a new version of an incident (later `modified`); earlier versions stay."""
    from shieldwall.assess.incidents import update_incident

    fields = _fields(**locals())
    node = open_node(home)
    try:
        inc = update_incident(node.store, node.member, incident_id, fields,
                              severity=_severity(factors, recoverability))
    finally:
        node.close()
    if as_json:
        _print_json(inc)
    else:
        out.print(f"{inc['id']} version {inc['modified']}")


@incident_app.command()
def show(incident_id: Annotated[str, typer.Argument(help="incident--<uuid>")],
         as_json: AsJson = False, home: HomeOpt = None) -> None:
    """An incident, its Incident Core fields, links and version history."""
    from shieldwall.assess.incidents import (
        SECTOR,
        SIGHTING_REFS,
        TECHNIQUES,
        core,
        get_incident,
        related_refs,
    )

    node = open_node(home)
    try:
        inc = get_incident(node.store, incident_id)
        versions = [v.obj()["modified"] for v in node.store.versions(incident_id)]
        related = related_refs(node.store, incident_id)
    finally:
        node.close()
    if as_json:
        _print_json(inc)
        return
    c = core(inc)
    out.print(f"[bold]{inc['name']}[/]  {inc['id']}")
    for label, value in (
        ("sector", inc.get(SECTOR)), ("determination", c.get("determination")),
        ("status", c.get("investigation_status")), ("recoverability", c.get("recoverability")),
        ("criticality", c.get("criticality")), ("types", c.get("incident_types")),
        ("impacted", c.get("impacted_entity_counts")), ("techniques", inc.get(TECHNIQUES)),
        ("sightings", inc.get(SIGHTING_REFS)), ("related", related),
        ("scores", [f"{s['name']}={s['value']} {s.get('description', '')}"
                    for s in c.get("scores") or []]),
        ("versions", versions),
    ):
        if value:
            out.print(f"  {label}: {value}", highlight=False)


@incident_app.command("list")
def list_(status: Status = None,
          mine: Annotated[bool, typer.Option("--mine", help="Only this member's.")] = False,
          as_json: Annotated[bool, typer.Option("--json", help="Print the STIX incidents.")]
          = False, home: HomeOpt = None) -> None:
    """Incidents this node holds (its own and those federated from other members)."""
    from rich.table import Table

    from shieldwall.assess.incidents import SECTOR, core, list_incidents, score_of

    node = open_node(home)
    try:
        incs = list_incidents(node.store, status=status,
                              member_identity=node.identity_id if mine else None)
    finally:
        node.close()
    if as_json:
        _print_json(incs)
        return
    if not incs:
        console.print("no incidents")
        return
    table = Table()
    for col in ("id", "name", "sector", "determination", "status", "score", "modified"):
        table.add_column(col)
    for inc in incs:
        c = core(inc)
        score = score_of(inc)
        table.add_row(inc["id"], inc.get("name", ""), inc.get(SECTOR, ""),
                      c.get("determination", ""), c.get("investigation_status", ""),
                      "" if score is None else f"{score:g}", inc["modified"])
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
