"""`shieldwall assist request|list|dispatch|close` and `shieldwall responder add|list`.

Thin: parse, call `shieldwall.respond.assist` / `respond.roster`, render. A member's node
requests; the coordination cell's node (`cell` in the config) lists, dispatches from its
roster and hands back; federation carries each side to the other.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shieldwall.cli.case import case_access, parse_tlp, print_json, split
from shieldwall.cli.common import HomeOpt, console, open_node, out

assist_app = typer.Typer(help="Assistance: request, list, dispatch a team, hand back.",
                         no_args_is_help=True)
responder_app = typer.Typer(help="The roster of responders the cell dispatches.",
                            no_args_is_help=True)

RequestArg = Annotated[str, typer.Argument(help="x-shieldwall-assistance-request--<uuid>")]
By = Annotated[str | None, typer.Option(
    "--by", help="The person who decides (default: this node's member).")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


@assist_app.command("request")
def request(incident: Annotated[str, typer.Option(
                "--incident", help="Your incident the help is for (incident--<uuid>).")],
            need: Annotated[list[str], typer.Option(
                "--need", help="What you need: forensics, malware-analysis, ... "
                "(comma-separated or repeated).")],
            tlp: Annotated[str, typer.Option(
                "--tlp", help="The request's TLP (named to you and the cell).")]
            = "amber+strict",
            description: Annotated[str | None, typer.Option("--description")] = None,
            as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Ask the alliance for help with one of your incidents; the request goes to the
    coordination cell (`cell` in this node's config) with the next federation round."""
    from shieldwall.respond.assist import request_assistance

    node = open_node(home)
    try:
        req = request_assistance(node.store, member=node.member, cell=node.config.cell,
                                 incident_id=incident, needs=split(need),
                                 access=case_access(node), tlp=parse_tlp(tlp),
                                 description=description)
    finally:
        node.close()
    if as_json:
        print_json(req)
    else:
        _say(f"request {req['id']} to {req['cell']}: needs {', '.join(req['needs'])}")


def _share(node: Any, views: list[Any], access: Any) -> None:
    """On the requesting member's node, share each dispatched case with its team
    (`respond.cases.share_with_team`), as `case show` does."""
    from shieldwall.respond.cases import load_case, share_with_team

    for v in views:
        if v.request.get("requester") == node.member and v.dispatch is not None:
            case = load_case(node.store, str(v.request["incident_ref"]), access)
            if share_with_team(node.store, node.member, case):
                console.print(f"shared {case.id} with the dispatched team "
                              f"({', '.join(case.audience())})", markup=False, soft_wrap=True,
                              highlight=False)


@assist_app.command("list")
def list_(limit: Annotated[int, typer.Option("--limit", help="Requests per page.")] = 100,
          after: Annotated[int | None, typer.Option(
              "--after", help="The page after this cursor (printed under a full page).")]
          = None,
          as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Assistance requests (the cases) this node's member may read, with their dispatch
    and the consultation's decision on the incident's campaign; in the order the node
    received them, a page at a time."""
    from shieldwall.respond.assist import list_requests

    node = open_node(home)
    try:
        access = case_access(node)
        views = list_requests(node.store, access, limit=max(1, min(limit, 1000)),
                              after_seq=after)
        _share(node, views, access)
    finally:
        node.close()
    if as_json:
        print_json([{"request": v.request, "status": v.status, "dispatch": v.dispatch,
                     "ignored_dispatches": [d["id"] for d in v.ignored],
                     "campaign": v.campaign_id, "consultation": v.consultation}
                    for v in views])
        return
    if not views:
        _say("no assistance request")
    for v in views:
        r = v.request
        _say(f"{r['id']}  {r['requester']}  {v.status}  needs {', '.join(r['needs'])}  "
             f"case {r['incident_ref']}")
        if v.dispatch:
            _say(f"  team {', '.join(v.dispatch['team'])} (lead {v.dispatch['lead']})"
                 + (f"; summary: {v.dispatch['summary']}" if v.dispatch.get("summary")
                    else ""))
        if r.get("summary"):
            _say(f"  closed by {r['requester']}: {r['summary']}")
        if v.campaign_id:
            _say(f"  campaign {v.campaign_id}: {v.consultation or 'no consultation decision'}")
        for d in v.ignored:
            _say(f"  ignored dispatch {d['id']} from {d.get('cell')}: not the cell the "
                 "request was addressed to")
    if views and len(views) >= limit:
        _say(f"more: --after {views[-1].seq}")


@assist_app.command("dispatch")
def dispatch(request_id: RequestArg,
             team: Annotated[list[str], typer.Option(
                 "--team", help="Responders MEMBER:PERSON (comma-separated or repeated).")],
             lead: Annotated[str, typer.Option("--lead", help="The team lead, MEMBER:PERSON.")],
             reason: Annotated[str, typer.Option("--reason", help="Why this team.")],
             by: By = None, as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Send a team from the roster (on the coordination cell's node only); the decision
    and its reasoning go to the append-only consultation log."""
    from shieldwall.respond.assist import dispatch_team
    from shieldwall.respond.model import RespondError

    node = open_node(home)
    try:
        if node.member != node.config.cell:
            raise RespondError(f"only the coordination cell's node ({node.config.cell}) "
                               f"dispatches; this node is {node.member}")
        obj = dispatch_team(node.store, cell=node.member, request_id=request_id,
                            team=split(team), lead=lead, reason=reason,
                            by=by or node.member, access=case_access(node))
    finally:
        node.close()
    if as_json:
        print_json(obj)
    else:
        _say(f"dispatch {obj['id']}: {', '.join(obj['team'])} (lead {obj['lead']}) "
             f"to {obj['requester']}")


@assist_app.command("close")
def close(request_id: RequestArg,
          summary: Annotated[str, typer.Option("--summary", help="What was done and found.")],
          by: By = None, home: HomeOpt = None) -> None:
    """Hand the case back: the cell closes its dispatch, the requesting member its request."""
    from shieldwall.respond.assist import close as close_request

    node = open_node(home)
    try:
        obj = close_request(node.store, member=node.member, request_id=request_id,
                            summary=summary, access=case_access(node), by=by)
    finally:
        node.close()
    _say(f"{obj['type']} {obj['id']} closed")


@responder_app.command("add")
def responder_add(handle: Annotated[str, typer.Argument(help="MEMBER:PERSON")],
                  name: Annotated[str, typer.Option("--name", help="Full name.")] = "",
                  skills: Annotated[list[str] | None, typer.Option(
                      "--skills", help="forensics,malware-analysis,...")] = None,
                  availability: Annotated[str, typer.Option(
                      "--availability", help="available, on-mission, unavailable.")]
                  = "available",
                  home: HomeOpt = None) -> None:
    """Add a responder to the roster (or change what it says of them)."""
    from shieldwall.respond.roster import add

    node = open_node(home)
    try:
        r = add(node.store, handle, name=name, skills=split(skills),
                availability=availability)
    finally:
        node.close()
    _say(f"{r.handle} ({r.name}): {', '.join(r.skills) or 'no skills listed'}; "
         f"{r.availability}")


@responder_app.command("list")
def responder_list(skill: Annotated[str | None, typer.Option("--skill")] = None,
                   available: Annotated[bool, typer.Option(
                       "--available", help="Only those available.")] = False,
                   as_json: AsJson = False, home: HomeOpt = None) -> None:
    """The roster: member, person, name, skills, availability."""
    from dataclasses import asdict

    from shieldwall.respond.roster import list_responders

    node = open_node(home)
    try:
        rows = list_responders(node.store, skill=skill, available_only=available)
    finally:
        node.close()
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    for r in rows:
        _say(f"{r.handle}  {r.name}  {','.join(r.skills)}  {r.availability}")
    if not rows:
        _say("no responder")


def register(app: typer.Typer) -> None:
    app.add_typer(assist_app, name="assist")
    app.add_typer(responder_app, name="responder")
