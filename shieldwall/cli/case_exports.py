"""`shieldwall case template|export|import`: case templates (CACAO 2.0 playbooks), exports
people use, and migration from TheHive 5 and DFIR-IRIS.

Thin: parse, call `shieldwall.respond.playbooks`, `.exports`, `.imports`, render. Reads are
the node member's `Access` (`case.case_access`), or with `export --for MEMBER` the one
TAXII gives that registered member: a file made for a member holds nothing it may not read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shieldwall.cli.case import CaseArg, TlpOpt, case_access, case_app, parse_tlp
from shieldwall.cli.common import HomeOpt, console, counted, open_node, out

template_app = typer.Typer(help="Case templates: OASIS CACAO 2.0 playbooks rendered as tasks.",
                           no_args_is_help=True)
case_app.add_typer(template_app, name="template")

TemplateArg = Annotated[str, typer.Argument(
    help="A shipped template's name (see 'case template list') or a CACAO playbook file.")]


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


@template_app.command("list")
def template_list() -> None:
    """The shipped templates: name, title, how many tasks they add."""
    from shieldwall.respond import playbooks

    for name, playbook in playbooks.templates().items():
        _say(f"{name:<26} {playbook['name']} ({counted(len(playbooks.steps(playbook)), 'task')})")


@template_app.command("show")
def template_show(template: TemplateArg) -> None:
    """The tasks a template adds, in order, with who does each."""
    from shieldwall.respond import playbooks

    playbook = playbooks.template(template)
    _say(f"{playbook['name']} ({playbook['id']})")
    for i, step in enumerate(playbooks.steps(playbook), 1):
        who = f" [{step.role}]" if step.role else ""
        when = f" (only {step.condition})" if step.condition else ""
        _say(f"{i:>3}. {step.name}{who}{when}")


@template_app.command("check")
def template_check(path: Annotated[Path, typer.Argument(help="A CACAO 2.0 playbook (.json).")]
                   ) -> None:
    """Validate a playbook against the CACAO 2.0 schemas (one line: why not)."""
    from shieldwall.respond import playbooks

    playbook = playbooks.load(path)
    _say(f"{path}: valid CACAO 2.0 playbook {playbook['name']!r}, "
         f"{counted(len(playbooks.steps(playbook)), 'task')}")


@template_app.command("apply")
def template_apply(case_id: CaseArg, template: TemplateArg, tlp: TlpOpt = None,
                   home: HomeOpt = None) -> None:
    """Add the template's steps to the case as tasks (people do them; nothing runs).
    Applying again adds only the steps the case does not hold yet."""
    from shieldwall.respond import playbooks
    from shieldwall.respond.cases import open_case

    playbook = playbooks.template(template)
    node = open_node(home)
    try:
        case = open_case(node.store, case_id, case_access(node))
        added = playbooks.apply(node.store, node.member, case, playbook, tlp=parse_tlp(tlp))
    finally:
        node.close()
    for obj in added:
        _say(f"task {obj['id']} [{obj['outcome']}] {obj['name']}")
    console.print(f"{playbook['name']}: {counted(len(added), 'task')} added to {case_id}",
                  markup=False, highlight=False)


ForMember = Annotated[str | None, typer.Option(
    "--for", help="Only what this registered member may read (default: this node's member).")]


@case_app.command("export")
def export(case_id: CaseArg,
           fmt: Annotated[str, typer.Option(
               "--format", help="html, md, timesketch, csv, stix or case-uco.")] = "html",
           output: Annotated[Path | None, typer.Option(
               "--output", "-o", help="File to write (default: standard output).")] = None,
           for_member: ForMember = None, home: HomeOpt = None) -> None:
    """Export the case: report (html, md), timeline (timesketch JSONL, csv), STIX bundle,
    evidence custody as CASE/UCO JSON-LD; only what the reader may see."""
    from shieldwall.cli.intel import _access_for
    from shieldwall.respond.exports import export_case

    node = open_node(home)
    try:
        access = _access_for(node, for_member) if for_member else case_access(node)
        reader = for_member or node.member
        if output is None:
            n = export_case(node.store, case_id, access, fmt, sys.stdout, reader=reader)
        else:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                n = export_case(node.store, case_id, access, fmt, fh, reader=reader)
    finally:
        node.close()
    console.print(f"exported {case_id} as {fmt} for {reader} ({counted(n, 'item')})",
                  markup=False, highlight=False)


@case_app.command("import")
def import_case(path: Annotated[Path, typer.Argument(help="The exported case (JSON).")],
                source: Annotated[str, typer.Option(
                    "--from", help="thehive (TheHive 5 case, API JSON) or iris "
                                   "(DFIR-IRIS case export).")],
                tlp: Annotated[str | None, typer.Option(
                    "--tlp", help="Level for items the export leaves unmarked "
                                  "(default: the case's own, else amber).")] = None,
                home: HomeOpt = None) -> None:
    """Import a case exported from TheHive 5 or DFIR-IRIS as a Shieldwall case of this
    node's member: the incident, its tasks, timeline, observables, notes and evidence."""
    from shieldwall.respond.imports import import_file

    node = open_node(home)
    try:
        result = import_file(node.store, node.member, path, source, default_tlp=parse_tlp(tlp))
    finally:
        node.close()
    _say(f"case {result.case_id} {result.name}")
    console.print(f"imported from {source}: {result.summary()}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Nothing to add to the app itself: `case.py` registered the `case` group."""
