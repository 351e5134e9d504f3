"""`shieldwall case show|task|event|note|observable`: working a case on this node.

Thin: parse, call `shieldwall.respond.cases`, render. Every read is the node member's
`Access` (`case_access`), the one TAXII gives the member: the operator sees of a case what
its member may read, nothing more.

Other modules add subcommands to `case_app` by importing it (docs/respond.md, "The
`case` command group"); typer builds the group when the command runs, so their order of
import does not matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, console, counted, open_node, out

if TYPE_CHECKING:
    from shieldwall.node import Node
    from shieldwall.store import Access

case_app = typer.Typer(help="Work a case: tasks, timeline, notes, observables.",
                       no_args_is_help=True)
task_app = typer.Typer(help="Tasks: add, update.", no_args_is_help=True)
event_app = typer.Typer(help="Timeline events: add, pull from the store.",
                        no_args_is_help=True)
observable_app = typer.Typer(help="Observables: add, hunt.", no_args_is_help=True)
case_app.add_typer(task_app, name="task")
case_app.add_typer(event_app, name="event")
case_app.add_typer(observable_app, name="observable")

CaseArg = Annotated[str, typer.Argument(help="The case: its incident id (incident--<uuid>).")]
TlpOpt = Annotated[str | None, typer.Option(
    "--tlp", help="This item's own TLP (default: the request's level).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the STIX objects.")]


def case_access(node: Node) -> Access:
    """The `Access` of this node's member, as TAXII computes it (`taxii.access_for`)."""
    from shieldwall.policy import Member
    from shieldwall.policy.access import access_for

    return access_for(Member(node.member, node.config.tier))


def parse_tlp(value: str | None) -> Any:
    """`--tlp` as a level (None when not given), parsed as `import --tlp` parses it."""
    from shieldwall.cli.intel import _tlp

    return _tlp(value)


def split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def print_json(data: Any) -> None:
    import orjson

    out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), soft_wrap=True,
              highlight=False, markup=False)


def _tlp_of(obj: dict[str, Any]) -> str:
    from shieldwall.respond.model import Marking

    return Marking.of(obj).tlp.short


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


@case_app.command()
def show(case_id: CaseArg, as_json: AsJson = False, home: HomeOpt = None) -> None:
    """The case as this node's member may read it: request, dispatch, tasks, timeline,
    notes, observables. On the requesting member's node, what it shared with the cell
    is shared with a dispatched team first (new versions, named to the team's members)."""
    from shieldwall.respond.cases import load_case
    from shieldwall.respond.model import observable_text

    node = open_node(home)
    try:
        access = case_access(node)
        case = _refreshed(node, load_case(node.store, case_id, access), access)
        if as_json:
            print_json({"incident": case.incident, "requests": case.requests,
                        "dispatches": case.dispatches, "tasks": case.tasks,
                        "timeline": case.timeline(), "impacts": case.impacts,
                        "notes": case.notes, "observables": case.observed,
                        "evidence": case.evidence, "custody": case.custody,
                        "audience": list(case.audience())})
            return
        if case.incident is None and not case.requests:
            raise _error(f"no case {case_id} this node may read")
        inc = case.incident or {}
        _say(f"Case {case_id}: {inc.get('name', '(incident not readable here)')}"
             + (f" [{_tlp_of(inc)}]" if inc else ""))
        req, disp = case.request, case.dispatch
        if req:
            _say(f"  request {req['id']} by {req['requester']} to {req['cell']}: "
                 f"{req['status']}; needs {', '.join(req['needs'])} [{_tlp_of(req)}]")
        if disp:
            _say(f"  dispatch {disp['id']}: {disp['status']}; team {', '.join(disp['team'])}"
                 f" (lead {disp['lead']})" + (f"; summary: {disp['summary']}"
                                             if disp.get("summary") else ""))
        for d in case.ignored_dispatches:
            _say(f"  ignored dispatch {d['id']} from {d.get('cell')}: not from the cell "
                 "the request was addressed to")
        if case.audience():
            _say(f"  audience: {', '.join(case.audience())}")
        _say(f"Tasks ({len(case.tasks)}):")
        for t in sorted(case.tasks, key=lambda t: t["created"]):
            _say(f"  {t['id']} [{t['outcome']}] {t['name']}"
                 + (f" -> {t['x_shieldwall_assignee']}" if t.get("x_shieldwall_assignee")
                    else "") + (f" due {t['x_shieldwall_due']}" if t.get("x_shieldwall_due")
                                else "") + f" [{_tlp_of(t)}]")
        _say(f"Timeline ({len(case.events)}):")
        for e in case.timeline():
            when = e.get("start_time") or e["created"]
            fid = f" ({e['start_time_fidelity']})" if e.get("start_time_fidelity") else ""
            src = f" from {e['x_shieldwall_source']}" if e.get("x_shieldwall_source") else ""
            _say(f"  {when}{fid} {e['name']}{src} [{e['status']}] [{_tlp_of(e)}]")
        _say(f"Observables ({len(case.observed)}):")
        for o in case.observed:
            _say(f"  {observable_text(o)} [{_tlp_of(o)}]")
        _say(f"Notes ({len(case.notes)}):")
        for n in sorted(case.notes, key=lambda n: n["created"]):
            _say(f"  {n['created']} {n['content'][:200]} [{_tlp_of(n)}]")
        if case.evidence or case.custody:
            _say(f"Evidence: {counted(len(case.evidence), 'item')}, "
                 f"{counted(len(case.custody), 'custody event')}")
    finally:
        node.close()


@case_app.command("stats")
def stats(as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Counts of what this node's member may read of rapid reaction: requests, dispatches
    and tasks by status."""
    from shieldwall.respond.cases import statistics

    node = open_node(home)
    try:
        data = statistics(node.store, case_access(node))
    finally:
        node.close()
    if as_json:
        print_json(data)
        return
    for kind, tally in data.items():
        _say(f"{kind}: " + (", ".join(f"{k} {v:,}" for k, v in tally.items()) or "none"))


def _error(message: str) -> Exception:
    from shieldwall.respond.model import RespondError

    return RespondError(message)


def _refreshed(node: Node, case: Any, access: Access) -> Any:
    """On the requesting member's node, share with a dispatched team what the member
    named to the cell, then read the case again (`respond.cases.share_with_team`)."""
    from shieldwall.respond.cases import load_case, share_with_team

    if case.requester == node.member and share_with_team(node.store, node.member, case):
        console.print("shared the case with the dispatched team "
                      f"({', '.join(case.audience())})", markup=False, highlight=False,
                      soft_wrap=True)
        return load_case(node.store, case.id, access)
    return case


def _open(node: Node, case_id: str) -> tuple[Any, Access]:
    from shieldwall.respond.cases import open_case

    access = case_access(node)
    return _refreshed(node, open_case(node.store, case_id, access), access), access


# ---- tasks -----------------------------------------------------------------------------

Assignee = Annotated[str | None, typer.Option("--assignee", help="MEMBER:PERSON.")]
Due = Annotated[str | None, typer.Option(
    "--due", help="STIX timestamp, e.g. 2026-12-07T18:00:00Z.")]
TaskStatus = Annotated[str | None, typer.Option(
    "--status", help="pending, ongoing, successful, failed, cancelled, unknown.")]


@task_app.command("add")
def task_add(case_id: CaseArg,
             name: Annotated[str, typer.Option("--name", help="What is to be done.")],
             assignee: Assignee = None, due: Due = None, status: TaskStatus = None,
             description: Annotated[str | None, typer.Option("--description")] = None,
             priority: Annotated[int | None, typer.Option("--priority", help="0-100.")] = None,
             tlp: TlpOpt = None, as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Add a task to the case (an Incident Core task, linked to the incident)."""
    from shieldwall.respond.cases import add_task

    node = open_node(home)
    try:
        case, _ = _open(node, case_id)
        obj = add_task(node.store, node.member, case, name=name, tlp=parse_tlp(tlp),
                       assignee=assignee, due=due, outcome=status or "pending",
                       description=description, priority=priority)
    finally:
        node.close()
    print_json(obj) if as_json else _say(f"task {obj['id']} [{obj['outcome']}] {obj['name']}")


@task_app.command("update")
def task_update(task_id: Annotated[str, typer.Argument(help="task--<uuid>")],
                status: TaskStatus = None, assignee: Assignee = None, due: Due = None,
                name: Annotated[str | None, typer.Option("--name")] = None,
                priority: Annotated[int | None, typer.Option("--priority")] = None,
                as_json: AsJson = False, home: HomeOpt = None) -> None:
    """A new version of one of this member's tasks (only its creator versions it)."""
    from shieldwall.respond.cases import update_task

    node = open_node(home)
    try:
        obj = update_task(node.store, node.member, task_id, case_access(node), outcome=status,
                          assignee=assignee, due=due, name=name, priority=priority)
    finally:
        node.close()
    print_json(obj) if as_json else _say(f"task {obj['id']} [{obj['outcome']}] {obj['name']}"
                                         f" (version {obj['modified']})")


# ---- timeline ---------------------------------------------------------------------------


@event_app.command("add")
def event_add(case_id: CaseArg,
              name: Annotated[str, typer.Option("--name", help="What happened.")],
              time: Annotated[str | None, typer.Option(
                  "--time", help="When (STIX timestamp).")] = None,
              fidelity: Annotated[str, typer.Option(
                  "--fidelity", help="How exact --time is: second, minute, hour, day, month, "
                  "year.")] = "second",
              source: Annotated[str | None, typer.Option(
                  "--source", help="Where this is known from (a log, a person, a tool).")]
              = None,
              sightings: Annotated[list[str] | None, typer.Option(
                  "--sighting", help="Sighting ids (repeat or comma-separate).")] = None,
              observables: Annotated[list[str] | None, typer.Option(
                  "--observable", help="Observed-data ids of the case.")] = None,
              status: Annotated[str, typer.Option(
                  "--status", help="occurred, ongoing, not-occurred, pending, undetermined.")]
              = "occurred",
              tlp: TlpOpt = None, as_json: AsJson = False, home: HomeOpt = None) -> None:
    """Add an event to the case's timeline (an Incident Core event)."""
    from shieldwall.respond.cases import add_event

    node = open_node(home)
    try:
        case, _ = _open(node, case_id)
        obj = add_event(node.store, node.member, case, name=name, tlp=parse_tlp(tlp),
                        start=time, fidelity=fidelity, source=source, status=status,
                        sighting_refs=split(sightings), observable_refs=split(observables))
    finally:
        node.close()
    print_json(obj) if as_json else _say(f"event {obj['id']} {obj['name']}")


@event_app.command("pull")
def event_pull(case_id: CaseArg,
               sightings: Annotated[list[str] | None, typer.Option(
                   "--sighting", help="Also these sightings.")] = None,
               incidents: Annotated[list[str] | None, typer.Option(
                   "--incident", help="Also these incidents (e.g. a related member's).")]
               = None,
               home: HomeOpt = None) -> None:
    """Pull sightings and incidents already in the store into the timeline: the case
    incident's sightings, sightings of the case's indicators, and those named. Each
    becomes one event, marked no wider than what it repeats; pulling again adds nothing."""
    from shieldwall.respond.timeline import pull_events

    node = open_node(home)
    try:
        case, access = _open(node, case_id)
        made = pull_events(node.store, node.member, case, access,
                           sighting_ids=split(sightings), incident_ids=split(incidents))
    finally:
        node.close()
    _say(f"pulled {counted(len(made), 'event')} into the timeline")
    for e in made:
        _say(f"  {e.get('start_time') or e['created']} {e['name']}")


# ---- notes and observables ----------------------------------------------------------------


@case_app.command("note")
def note(case_id: CaseArg, text: Annotated[str, typer.Argument(help="The note.")],
         refs: Annotated[list[str] | None, typer.Option(
             "--ref", help="Items of the case the note is about.")] = None,
         tlp: TlpOpt = None, home: HomeOpt = None) -> None:
    """Add a note to the case (a STIX note; to comment another member's item, since only
    its creator versions it)."""
    from shieldwall.respond.cases import add_note

    node = open_node(home)
    try:
        case, _ = _open(node, case_id)
        obj = add_note(node.store, node.member, case, text, tlp=parse_tlp(tlp),
                       refs=split(refs))
    finally:
        node.close()
    _say(f"note {obj['id']}")


@observable_app.command("add")
def observable_add(case_id: CaseArg,
                   values: Annotated[list[str], typer.Argument(
                       help="TYPE:VALUE, e.g. ipv4-addr:198.51.100.7, domain-name:evil.example,"
                       " file:SHA-256=<hex>.")],
                   first_observed: Annotated[str | None, typer.Option(
                       "--first-observed", help="STIX timestamp.")] = None,
                   tlp: TlpOpt = None, home: HomeOpt = None) -> None:
    """Add observables to the case, each typed and in canonical form."""
    from shieldwall.respond.cases import add_observable, load_case
    from shieldwall.respond.model import observable_text

    node = open_node(home)
    try:
        case, access = _open(node, case_id)
        for v in values:
            obj = add_observable(node.store, node.member, case, v, tlp=parse_tlp(tlp),
                                 first_observed=first_observed)
            _say(f"observable {observable_text(obj)} ({obj['id']})")
            case = load_case(node.store, case.id, access)
    finally:
        node.close()


@observable_app.command("hunt")
def observable_hunt(case_id: CaseArg,
                    paths: Annotated[list[Path] | None, typer.Argument(
                        help="Log files or directories to hunt in.")] = None,
                    since: Annotated[str | None, typer.Option(
                        help="Also the node's stored telemetry of this period, e.g. 30d.")]
                    = None,
                    fmt: Annotated[str | None, typer.Option(
                        "--format", help="zeek, suricata, stix, jsonl (default: detect).")]
                    = None,
                    record: Annotated[bool, typer.Option(
                        "--record", help="Add each hit to the timeline as an event.")] = False,
                    home: HomeOpt = None) -> None:
    """Hunt the case's observables in logs and in the node's stored telemetry (the same
    hunt and retro-hunt as `shieldwall hunt`); the observables never become indicators
    of the node: nothing leaves it but what --record adds to the case."""
    from shieldwall.cli.hunt import _parse_since
    from shieldwall.respond.hunting import hunt_case, record_hits

    if not paths and not since:
        raise _error("give log files or directories, or --since for the stored telemetry")
    node = open_node(home)
    try:
        case, _ = _open(node, case_id)
        hits = hunt_case(case, paths=list(paths or []), fmt=fmt,
                         telemetry=node.config.home / "telemetry",
                         since_us=_parse_since(since) if since else None)
        for h in hits:
            _say(f"  {h.observable}: {counted(h.hits, 'hit')}, first {h.first}, last {h.last}")
        if not hits:
            _say(f"no hit for the case's {counted(len(case.observed), 'observable')}")
        if record and hits:
            made = record_hits(node.store, node.member, case, hits)
            _say(f"recorded {counted(len(made), 'event')} in the timeline")
    finally:
        node.close()


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")
