"""`shieldwall case attribute`: the team's confirmed attribution of its case."""

from __future__ import annotations

from typing import Annotated

import typer

from shieldwall.cli.case import CaseArg, TlpOpt, _open, case_app, parse_tlp, print_json
from shieldwall.cli.common import HomeOpt, open_node, out


@case_app.command("attribute")
def attribute(case_id: CaseArg,
              group: Annotated[str, typer.Option(
                  "--group", help="The ATT&CK group: its id (G0032) or a known name.")],
              confidence: Annotated[int | None, typer.Option(
                  "--confidence", help="The team's confidence, 0-100.")] = None,
              reason: Annotated[str | None, typer.Option(
                  "--reason", help="Why: what ties the case to the group.")] = None,
              withdraw: Annotated[bool, typer.Option(
                  "--withdraw", help="Take back this member's attribution to the group "
                  "(a new version, revoked).")] = False,
              tlp: TlpOpt = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print the STIX.")]
              = False,
              home: HomeOpt = None) -> None:
    """Record the team's confirmed attribution (an analyst's attributed-to, not the
    tool's ranking); again later: a new version of the same object. The case's evidence
    then counts for the group in later `shieldwall attribute` rankings."""
    from shieldwall.respond.attribution import attribute_case
    from shieldwall.respond.attribution import withdraw as take_back
    from shieldwall.respond.model import RespondError

    if not withdraw and (confidence is None or reason is None):
        raise RespondError("give --confidence and --reason (or --withdraw)")
    level = parse_tlp(tlp)
    node = open_node(home)
    try:
        case, access = _open(node, case_id)
        if withdraw:
            rel = take_back(node.store, node.member, case, access, group=group)
        else:
            rel = attribute_case(node.store, node.member, node.identity(), case, access,
                                 group=group, confidence=int(confidence or 0),
                                 reason=str(reason), tlp=level)
    finally:
        node.close()
    if as_json:
        print_json(rel)
        return
    gid = rel["external_references"][0]["external_id"]
    out.print(f"{case_id} attributed-to {gid} ({rel['target_ref']}), confidence "
              f"{rel['confidence']}: {rel['id']}" + (" (withdrawn)" if rel.get("revoked")
                                                   else ""),
              markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:  # the `case` group is registered by cli/case.py
    pass
