"""The case report, as a printable HTML page and as Markdown, from the same objects.

Both are made from one context (`context`): the case's summary, tasks, timeline,
observables, evidence with its custody count, impacts and notes, each item with its own
TLP, and the document's TLP (the most restrictive of what it holds) at the top and, in
HTML, on every printed page. Text from the case (an attacker's mail subject, a log line)
is escaped in both: Jinja2's autoescape in HTML, Markdown's special characters in
Markdown, so nothing in a case can inject markup into the report.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, TextIO

from shieldwall.respond.cases import Case
from shieldwall.respond.exports.view import (
    document_tlp,
    findings,
    observables,
    timeline,
    tlp_of,
)
from shieldwall.stix.timestamps import format_ts, now_us


def context(case: Case, *, reader: str) -> dict[str, Any]:
    """What the report shows, in display order; every value plain text."""
    inc = case.incident or {}
    request, dispatch = case.request, case.dispatch
    custody: dict[str, int] = {}
    for c in case.custody:
        custody[str(c.get("evidence_ref"))] = custody.get(str(c.get("evidence_ref")), 0) + 1
    return {
        "title": str(inc.get("name") or case.id),
        "case_id": case.id,
        "description": inc.get("description"),
        "reader": reader,
        "generated": format_ts(now_us())[:19].replace("T", " ") + " UTC",
        "tlp": document_tlp(case).label,
        "requester": case.requester,
        "cell": case.cell,
        "needs": ", ".join(request.get("needs") or ()) if request else None,
        "request_status": request.get("status") if request else None,
        "team": ", ".join(case.team),
        "lead": dispatch.get("lead") if dispatch else None,
        "summary": (dispatch or {}).get("summary") or (request or {}).get("summary"),
        "tasks": [{
            "name": t.get("name"), "status": t.get("outcome"),
            "assignee": t.get("x_shieldwall_assignee"), "due": _day(t.get("x_shieldwall_due")),
            "description": t.get("description"), "tlp": tlp_of(t).label,
        } for t in sorted(case.tasks, key=lambda t: (t["created"], t["id"]))],
        "timeline": [{
            "time": e.time[:19].replace("T", " "), "fidelity": e.fidelity, "what": e.desc,
            "message": e.message, "source": e.source, "tlp": e.tlp.label,
        } for e in timeline(case)],
        "observables": [{
            "value": text, "first_observed": _day(od.get("first_observed")),
            "tlp": tlp_of(od).label,
        } for text, od in observables(case)],
        "evidence": [{
            "name": ev.get("name"), "sha256": ev.get("sha256"), "size": ev.get("size"),
            "kept_at": ev.get("kept_at"), "collected_by": ev.get("collected_by"),
            "how": ev.get("collected_how"), "collected": _day(ev.get("collected")),
            "custody": custody.get(ev["id"], 0), "tlp": tlp_of(ev).label,
        } for ev in sorted(case.evidence, key=lambda e: (e["created"], e["id"]))],
        "findings": findings(case),
        "impacts": [{
            "category": i.get("impact_category"), "description": i.get("description"),
            "tlp": tlp_of(i).label,
        } for i in case.impacts],
        "notes": [{
            "abstract": n.get("abstract"), "content": n.get("content"),
            "created": _day(n.get("created")), "tlp": tlp_of(n).label,
        } for n in sorted(case.notes, key=lambda n: (n["created"], n["id"]))],
    }


def _day(ts: Any) -> str | None:
    return str(ts)[:16].replace("T", " ") if ts else None


@functools.cache
def _template() -> Any:
    """The compiled page, once a process: compiling it costs ~75 ms, rendering ~15."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
        undefined=jinja2.StrictUndefined)
    return env.get_template("report.html")


def html(case: Case, out: TextIO, *, reader: str) -> int:
    """The printable report; returns how many items it lists."""
    ctx = context(case, reader=reader)
    out.write(_template().render(**ctx))
    return _count(ctx)


def _count(ctx: dict[str, Any]) -> int:
    return sum(len(ctx[k]) for k in ("tasks", "timeline", "observables", "evidence",
                                      "findings", "impacts", "notes"))


# What makes Markdown markup inside a line of text (links and images need `[`, emphasis
# `*`/`_`, code a backtick, HTML `<`, tables `|`); a line's start can open a heading, a
# list or a quote, so a leading `#`, `-`, `+`, `>` or `1.` is escaped too.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_MD_LEAD = re.compile(r"^(\s*)(?:([#+>-])|(\d+)\.)")


def md(text: Any) -> str:
    """`text` as literal Markdown on one line: markup characters escaped."""
    if text is None or text == "":
        return "—"
    flat = _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return _MD_LEAD.sub(lambda m: m.group(1) + (
        "\\" + m.group(2) if m.group(2) else m.group(3) + "\\."), flat)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["_None that this reader may see._", ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(case: Case, out: TextIO, *, reader: str) -> int:
    """The report as Markdown; returns how many items it lists."""
    c = context(case, reader=reader)
    lines = [
        f"**{c['tlp']}**", "",
        f"# {md(c['title'])}", "",
        f"Case `{c['case_id']}` · made for {md(c['reader'])} on {c['generated']}, "
        "holding only what that reader may see.", "",
    ]
    if c["description"]:
        lines += [md(c["description"]), ""]
    lines += ["## Summary", "",
              f"- Requested by: {md(c['requester'])} from {md(c['cell'])}"
              f" (needs: {md(c['needs'])}; request {md(c['request_status'])})",
              f"- Team: {md(c['team'])} (lead {md(c['lead'])})"]
    if c["summary"]:
        lines.append(f"- Hand-back: {md(c['summary'])}")
    lines += ["", "## Tasks", ""]
    lines += _table(["Task", "Status", "Assignee", "Due", "TLP"],
                    [[t["name"], t["status"], t["assignee"], t["due"], t["tlp"]]
                     for t in c["tasks"]])
    lines += ["## Timeline", ""]
    lines += _table(["Time (UTC)", "What", "Message", "Source", "TLP"],
                    [[t["time"] + (f" ({t['fidelity']})" if t["fidelity"] else ""), t["what"],
                      t["message"], t["source"], t["tlp"]] for t in c["timeline"]])
    lines += ["## Observables", ""]
    lines += _table(["Observable", "First observed", "TLP"],
                    [[o["value"], o["first_observed"], o["tlp"]] for o in c["observables"]])
    lines += ["## Evidence", ""]
    lines += _table(["Item", "SHA-256", "Size", "Kept at", "Collected by", "How",
                     "Custody events", "TLP"],
                    [[e["name"], e["sha256"], e["size"], e["kept_at"], e["collected_by"],
                      e["how"], e["custody"], e["tlp"]] for e in c["evidence"]])
    if c["findings"]:
        lines += ["## Findings linked to the case", ""]
        lines += _table(["Type", "Name", "Detail", "TLP"],
                        [[f["type"], f["name"], f["detail"], f["tlp"]] for f in c["findings"]])
    if c["impacts"]:
        lines += ["## Impacts", ""]
        lines += _table(["Category", "Description", "TLP"],
                        [[i["category"], i["description"], i["tlp"]] for i in c["impacts"]])
    lines += ["## Notes", ""]
    if not c["notes"]:
        lines += ["_None that this reader may see._", ""]
    for n in c["notes"]:
        lines += [f"### {md(n['abstract'] or 'Note')} ({n['tlp']}, {n['created']})", "",
                  md(n["content"]), ""]
    lines += [f"**{c['tlp']}**", ""]
    out.write("\n".join(lines))
    return _count(c)
