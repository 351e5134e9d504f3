"""`shieldwall consult policy|show|decide|log`: the coordination cell's consultation step.

Thin: parse, call `shieldwall.assess.consultation`, render. The tool recommends; a named
person decides, and the decision goes to the append-only audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, open_node, out

consult_app = typer.Typer(help="Consultation: recommendation, decision, audit log.",
                          no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Role = Annotated[str | None, typer.Option(
    "--as", help="Read the policy as this role (default: this node's member).")]
Cell = Annotated[str | None, typer.Option(
    "--cell", help="Whose policy (default: this node's member, the coordination cell).")]


def _print_json(data: Any) -> None:
    import orjson

    out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), soft_wrap=True,
              highlight=False)


@consult_app.command()
def policy(file: Annotated[Path | None, typer.Option(
               "--file", help="Set the policy from this JSON file (see docs/assessment.md).")]
           = None,
           init: Annotated[bool, typer.Option(
               "--init", help="Store the default policy, readable by this member only.")]
           = False,
           role: Role = None, as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Set (--file, --init) or show the consultation policy, TLP:RED for its readers."""
    from dataclasses import replace

    import orjson

    from shieldwall.assess.consultation import (
        DEFAULT_POLICY,
        ConsultationPolicy,
        load_policy,
        reader_access,
        store_policy,
    )

    node = open_node(home)
    try:
        if file is not None or init:
            pol = (ConsultationPolicy.from_json(orjson.loads(file.read_bytes())) if file
                   else replace(DEFAULT_POLICY, readers=(node.member,)))
            store_policy(node.store, pol, cell=node.member, created_by_ref=node.identity_id)
        # The operator who just set the policy has it already: it is echoed as stored,
        # even when it names none of this node's roles. Showing it reads it as a role.
        if role is not None or (file is None and not init):
            pol = load_policy(node.store, cell=node.member,
                              access=reader_access(role or node.member))
    finally:
        node.close()
    _print_json(pol.as_json()) if as_json else out.print(pol.as_json())


@consult_app.command()
def correlate(cap: Annotated[int, typer.Option(
                  "--cap", help="A value carried by more objects than this links nothing.")]
              = 50,
              window_days: Annotated[float, typer.Option(
                  "--window-days", help="Link only objects first seen this close.")] = 30.0,
              as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Correlate incidents and sightings stored since the last run; publish candidate
    campaigns (with their evidence) and report the capped values."""
    from shieldwall.assess.correlation import CorrelationConfig, Correlator, publish_campaigns

    node = open_node(home)
    try:
        corr = Correlator(node.store, CorrelationConfig(window_days=window_days,
                                                        max_objects=cap))
        result = corr.update_from_store()
        campaigns = publish_campaigns(node.store, corr, member=node.member,
                                      created_by_ref=node.identity_id)
        capped = corr.capped(20)
    finally:
        node.close()
    if as_json:
        _print_json({"new_links": result.new_links, "campaigns": campaigns,
                     "capped": [c.__dict__ for c in capped]})
        return
    out.print(f"new links: {result.new_links}; candidate campaigns: {len(campaigns)}")
    for c in campaigns:
        sev = c["x_shieldwall_severity"]
        out.print(f"  {c['id']}  {', '.join(c['x_shieldwall_members'])}  severity "
                  f"{sev['score']} {sev['level']}", highlight=False)
    for c in capped:
        out.print(f"  capped ({c.reason}): {c.kind} {c.value} in {c.objects} objects",
                  highlight=False)


def _recommendation(node: Any, campaign: str, role: str | None,
                    cell: str | None) -> tuple[Any, Any]:
    """The campaign's facts and the policy's recommendation, the policy read as `role`
    (a role the policy does not name cannot read it, so gets an error, not a default)."""
    from shieldwall.assess.consultation import (
        facts_from_store,
        load_policy,
        reader_access,
        recommend,
    )

    pol = load_policy(node.store, cell=cell or node.member,
                      access=reader_access(role or node.member))
    facts = facts_from_store(node.store, campaign)
    return facts, recommend(facts, pol)


@consult_app.command()
def show(campaign: Annotated[str, typer.Argument(help="campaign--<uuid>")],
         role: Role = None, cell: Cell = None, as_json: AsJson = False,
         home: HomeOpt = None) -> None:
    """The recommendation for a campaign, every check behind it, and its decision status."""
    from shieldwall.assess.consultation import status_of

    node = open_node(home)
    try:
        facts, rec = _recommendation(node, campaign, role, cell)
        rec.status = status_of(node.store, campaign)
    finally:
        node.close()
    if as_json:
        _print_json(rec.as_json())
        return
    out.print(f"[bold]{campaign}[/]: recommendation [bold]{rec.level}[/] "
              f"(policy {rec.policy_version}) - {rec.status}")
    out.print(f"  severity {facts.severity}, members {', '.join(facts.members)}, sectors "
              f"{', '.join(facts.sectors) or 'none'}, attribution confidence "
              f"{'none' if facts.attribution_confidence is None else facts.attribution_confidence}",
              highlight=False)
    for c in rec.checks:
        mark = "met" if c.met else "not met"
        out.print(f"  [{c.level}] {c.criterion}: needs {c.needed}, found {c.found} ({mark})",
                  highlight=False)
    out.print("  response options to consider:")
    for category, items in rec.response_options.items():
        out.print(f"    {category}: {'; '.join(items)}", highlight=False)
    out.print(f"  principles to check: {', '.join(rec.principles)}")
    out.print("  the tool does not decide: record a decision with `shieldwall consult decide`")


@consult_app.command()
def decide(campaign: Annotated[str, typer.Argument(help="campaign--<uuid>")],
           by: Annotated[str, typer.Option("--by", help="The person who decides (name).")],
           decision: Annotated[str, typer.Option(
               "--decision", help="monitor, coordinate, request-assistance, "
               "convene-consultation or no-action.")],
           reason: Annotated[str, typer.Option("--reason", help="The reasoning, recorded.")],
           role: Role = None, cell: Cell = None, home: HomeOpt = None) -> None:
    """Record a named person's decision on a campaign in the append-only audit log."""
    from shieldwall.assess.consultation import record_decision

    node = open_node(home)
    try:
        _, rec = _recommendation(node, campaign, role, cell)
        d = record_decision(node.store, rec, by=by, decision=decision, reason=reason)
    finally:
        node.close()
    out.print(f"recorded #{d.seq}: {d.decision} by {d.decided_by} (recommended "
              f"{d.recommendation}) at {d.recorded}", highlight=False)


@consult_app.command("log")
def log_(campaign: Annotated[str | None, typer.Option("--campaign")] = None,
         as_json: AsJson = False, home: HomeOpt = None) -> None:
    """The audit log of decisions, oldest first. It can only grow."""
    from dataclasses import asdict

    from shieldwall.assess.consultation import read_log

    node = open_node(home)
    try:
        entries = read_log(node.store, campaign)
    finally:
        node.close()
    if as_json:
        _print_json([asdict(e) for e in entries])
        return
    for e in entries:
        out.print(f"#{e.seq} {e.recorded} {e.campaign_id}: {e.decision} by {e.decided_by} "
                  f"(recommended {e.recommendation}, {e.policy_version}): {e.reason}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(consult_app, name="consult")
