"""A TheHive 5 case as a Shieldwall case.

TheHive 5's own "export" is a `.thar` archive, encrypted with a password and documented as
readable by TheHive only; what a migration reads is the case as TheHive 5's API returns
it: `GET /api/v1/case/{id}` and, through `POST /api/v1/query`, its tasks (with their logs),
observables, comments, pages and procedures. The file is one JSON object:

    {"case": {...}, "tasks": [{..., "logs": [...]}], "observables": [...],
     "comments": [...], "pages": [...], "procedures": [...]}

(each list optional; a bare case object, `"_type": "Case"`, is accepted too), with the
field names of TheHive 5's output types (thehive4py's `OutputCase`, `OutputTask`,
`OutputTaskLog`, `OutputObservable`, `OutputComment`, `OutputCasePage`,
`OutputProcedure`). Mapping:

| TheHive 5                  | Shieldwall                                                   |
|----------------------------|--------------------------------------------------------------|
| case                       | the incident (title, description, at `startDate`), at its    |
|                            | TLP (`tlpLabel`, else `tlp`: 0 CLEAR, 1 GREEN, 2 AMBER,      |
|                            | 3 AMBER+STRICT, 4 RED); the fields Shieldwall has no          |
|                            | property for (number, severity, PAP, status, stage, tags,     |
|                            | assignee, summary, custom fields) in a note                   |
| tasks                      | tasks (Waiting -> pending, InProgress -> ongoing, Completed  |
|                            | -> successful, Cancel -> cancelled; assignee; due date; group |
|                            | in the description); their logs as notes                      |
| observables                | observables (ip, domain, fqdn, url, mail, hash) at their own  |
|                            | TLP; other types (filename, registry, other) as notes          |
| comments, pages            | notes                                                          |
| procedures (ATT&CK)        | timeline events at `occurDate` ("T1566 (initial-access)")     |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shieldwall.assess.incidents import IncidentFields, new_incident
from shieldwall.respond.imports.common import Builder, listed, person, text, when
from shieldwall.respond.model import RespondError, event, task
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP

_STATUS = {"waiting": "pending", "inprogress": "ongoing", "completed": "successful",
           "cancel": "cancelled"}
_TLP_NUMBERS = {0: TLP.CLEAR, 1: TLP.GREEN, 2: TLP.AMBER, 3: TLP.AMBER_STRICT, 4: TLP.RED}
# A case as TheHive 5's API returns it may carry only the numbers (a real answer of a case
# search has no severityLabel, papLabel nor tlpLabel: tests/data/respond/thehive5-cases-list.json).
_SEVERITIES = {1: "LOW", 2: "MEDIUM", 3: "HIGH", 4: "CRITICAL"}
_PAPS = {0: "CLEAR", 1: "GREEN", 2: "AMBER", 3: "RED"}
_KINDS = {"ip": "ip", "domain": "domain-name", "fqdn": "domain-name", "hostname": "domain-name",
          "url": "url", "uri_path": None, "mail": "email-addr", "email": "email-addr",
          "hash": "hash"}


def _case(doc: Any) -> Mapping[str, Any]:
    if isinstance(doc, Mapping) and isinstance(doc.get("case"), Mapping):
        return doc["case"]
    if isinstance(doc, Mapping) and str(doc.get("_type", "")).lower() == "case":
        return doc
    if isinstance(doc, list) and doc and all(
            isinstance(c, Mapping) and str(c.get("_type", "")).lower() == "case" for c in doc):
        raise RespondError(f"a list of {len(doc)} TheHive 5 cases (a case search's answer): "
                           "import each case on its own")
    raise RespondError("not a TheHive 5 case: no 'case' object (expected the JSON of "
                       "GET /api/v1/case/{id}, with its tasks and observables)")


def case_key(doc: Any) -> str:
    case = _case(doc)
    return str(case.get("_id") or case.get("number") or case.get("title"))


def fallback_time(doc: Any) -> Any:
    case = _case(doc)
    return case.get("_createdAt") or case.get("startDate")


def tlp_of(item: Mapping[str, Any]) -> TLP | None:
    label = str(item.get("tlpLabel") or "").upper().removeprefix("TLP:")
    if label:
        try:
            return TLP.parse(label)
        except ValueError:
            pass
    number = item.get("tlp")
    return _TLP_NUMBERS.get(number) if isinstance(number, int) else None


def _label(labels: Mapping[int, str], number: Any) -> Any:
    return labels.get(number, number) if isinstance(number, int) else number


def _list(doc: Any, key: str) -> list[Mapping[str, Any]]:
    return [] if doc is _case(doc) else listed(doc, key, "TheHive")


def convert(doc: Any, b: Builder) -> None:
    case = _case(doc)
    level = tlp_of(case)
    if level is not None:
        b.default_tlp = level
    title = text(case.get("title"), 250) or f"TheHive case #{case.get('number')}"
    inc = new_incident(member_identity_id(b.member), IncidentFields(
        name=title, description=text(case.get("description"))), tlp=b.default_tlp)[0]
    inc.update(b.marking().props())
    b.incident(b.settle(inc, "case", at=case.get("startDate") or case.get("_createdAt"),
                        updated=case.get("_updatedAt")))

    custom = case.get("customFields")
    meta = b.summary_of({
        "TheHive case": f"#{case.get('number')} ({case.get('_id')})",
        "severity": case.get("severityLabel") or _label(_SEVERITIES, case.get("severity")),
        "PAP": case.get("papLabel") or _label(_PAPS, case.get("pap")),
        "status": case.get("status"), "stage": case.get("stage"),
        "impact": case.get("impactStatus"), "assignee": case.get("assignee"),
        "tags": ", ".join(map(str, case.get("tags") or ())), "flag": case.get("flag") or None,
        "summary": case.get("summary"), "created by": case.get("_createdBy"),
        "custom fields": ", ".join(f"{c.get('name')}={c.get('value')}" for c in custom
                                   if isinstance(c, Mapping)) if isinstance(custom, list)
        else None,
    })
    b.note(meta, "case-note", abstract="Imported from TheHive 5", at=case.get("_createdAt"),
           updated=case.get("_updatedAt"))

    for t in _list(doc, "tasks"):
        extra = b.summary_of({"group": t.get("group"), "mandatory": t.get("mandatory") or None,
                              "started": t.get("startDate"), "ended": t.get("endDate")})
        desc = "\n".join(x for x in (text(t.get("description")), extra) if x) or None
        obj = task(creator=b.member, name=text(t.get("title"), 250) or "task",
                   marking=b.marking(), description=desc,
                   assignee=person(b.member, t.get("assignee")) if t.get("assignee") else None,
                   due=when(t.get("dueDate")),
                   outcome=_STATUS.get(str(t.get("status") or "").lower(), "unknown"))
        b.add(b.settle(obj, "task", t.get("_id"), at=t.get("_createdAt"),
                       updated=t.get("_updatedAt")), "tasks")
        for log in t.get("logs") or ():
            if isinstance(log, Mapping):
                b.note(text(log.get("message")), "task-log", log.get("_id"),
                       abstract=f"Log of task {obj['name']} by {log.get('_createdBy') or '?'}",
                       at=log.get("date") or log.get("_createdAt"), refs=(obj["id"],))

    for o in _list(doc, "observables"):
        value = text(o.get("data"), 2048)
        kind = str(o.get("dataType") or "")
        if value:
            b.observable(_KINDS.get(kind.lower()), value, kind,
                         {"message": o.get("message"), "ioc": o.get("ioc"),
                          "sighted": o.get("sighted"),
                          "tags": ", ".join(map(str, o.get("tags") or ()))},
                         "observable", o.get("_id"), at=o.get("startDate") or o.get("_createdAt"),
                         updated=o.get("_updatedAt"), tlp=tlp_of(o))
    for c in _list(doc, "comments"):
        b.note(text(c.get("message")), "comment", c.get("_id"), at=c.get("_createdAt"),
               updated=c.get("_updatedAt"),
               abstract=f"Comment by {c.get('_createdBy') or '?'}")
    for p in _list(doc, "pages"):
        b.note(text(p.get("content")), "page", p.get("_id"), at=p.get("_createdAt"),
               updated=p.get("_updatedAt"),
               abstract=text(p.get("title"), 250))
    for p in _list(doc, "procedures"):
        technique = text(p.get("patternId"), 40)
        if not technique:
            continue
        start = when(p.get("occurDate"))
        tactic = p.get("tactic")
        b.add(b.settle(event(creator=b.member, marking=b.marking(), start=start,
                             fidelity="second" if start else None,
                             name=f"{technique}{f' ({tactic})' if tactic else ''}",
                             description=text(p.get("description")), source="TheHive"),
                       "procedure", p.get("_id"), at=p.get("occurDate") or p.get("_createdAt")),
              "events")
