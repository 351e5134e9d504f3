"""A DFIR-IRIS case export (`GET /case/export`, IRIS API v2.1.0) as a Shieldwall case.

The export is `{"status", "message", "data": {case, evidences, timeline, iocs, assets,
tasks, comments, notes, export_date}}` (or that `data` object alone). Mapping:

| IRIS                     | Shieldwall                                                    |
|--------------------------|---------------------------------------------------------------|
| case                     | the incident (name, description; opened at `open_date`)       |
| case metadata Shieldwall | a note: customer, classification, state, severity, owner,    |
| has no property for      | SOC id, tags, alerts, IRIS ids                                |
| tasks                    | tasks (status: To do, On hold -> pending; In progress ->      |
|                          | ongoing; Done -> successful; Canceled -> cancelled; the first |
|                          | assignee as `MEMBER:PERSON`, the others in the description)   |
| timeline                 | events at `event_date` (UTC, to the second), source, content, |
|                          | category, with the case's observables they name               |
| iocs                     | observables (IP, domain, hostname, URL, e-mail, MD5/SHA-*), at |
|                          | the IOC's TLP; any other type (a file name, an authentihash)  |
|                          | as a note, so nothing is lost                                 |
| assets                   | notes (name, type, address, compromise and analysis status)   |
| evidences                | evidence items when they carry a SHA-256 (IRIS's usual hash); |
|                          | kept at "the IRIS datastore"; otherwise a note                |
| notes, comments          | notes                                                         |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shieldwall.assess.incidents import IncidentFields, new_incident
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.imports.common import Builder, listed, person, text, when, word
from shieldwall.respond.model import RespondError, event, task
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP

_STATUS = {"to do": "pending", "on hold": "pending", "in progress": "ongoing",
           "done": "successful", "canceled": "cancelled", "cancelled": "cancelled"}
_IOC_KINDS = {"ip-dst": "ip", "ip-src": "ip", "ip-any": "ip", "ip": "ip",
              "domain": "domain-name", "hostname": "domain-name", "fqdn": "domain-name",
              "url": "url", "uri": "url", "link": "url",
              "email": "email-addr", "email-src": "email-addr", "email-dst": "email-addr",
              "md5": "hash", "sha1": "hash", "sha256": "hash", "sha512": "hash"}
_SOURCE = "DFIR-IRIS"
_TLP = {"clear": TLP.CLEAR, "white": TLP.CLEAR, "green": TLP.GREEN, "amber": TLP.AMBER,
        "amber+strict": TLP.AMBER_STRICT, "red": TLP.RED}


def data_of(doc: Any) -> Mapping[str, Any]:
    """The export's `data` (the whole response, or `data` alone), else a one-line refusal."""
    if isinstance(doc, Mapping) and isinstance(doc.get("data"), Mapping):
        doc = doc["data"]
    if not isinstance(doc, Mapping) or not isinstance(doc.get("case"), Mapping):
        raise RespondError("not a DFIR-IRIS case export: no 'case' object (expected the "
                           "JSON of GET /case/export)")
    return doc


def case_key(doc: Any) -> str:
    case = data_of(doc)["case"]
    return str(case.get("case_uuid") or case.get("case_id") or case.get("name"))


def fallback_time(doc: Any) -> Any:
    return data_of(doc).get("export_date")


def convert(doc: Any, b: Builder) -> None:
    data = data_of(doc)
    case = data["case"]
    name = text(case.get("name"), 250) or f"IRIS case {case.get('case_id')}"
    inc = new_incident(member_identity_id(b.member), IncidentFields(
        name=name, description=text(case.get("description"))), tlp=b.default_tlp)[0]
    inc.update(b.marking().props())
    b.incident(b.settle(inc, "case", at=case.get("initial_date") or case.get("open_date")))

    meta = b.summary_of({
        "IRIS case": f"#{case.get('case_id')} {case.get('case_uuid') or ''}".strip(),
        "SOC id": case.get("soc_id"),
        "customer": (case.get("client") or {}).get("customer_name"),
        "classification": (case.get("classification") or {}).get("name"),
        "state": (case.get("state") or {}).get("state_name"),
        "status": case.get("status_name"),
        "severity": (case.get("severity") or {}).get("severity_name")
        if isinstance(case.get("severity"), Mapping) else case.get("severity"),
        "owner": (case.get("owner") or {}).get("user_login"),
        "tags": ", ".join(str(t.get("tag_title")) for t in case.get("tags") or ()
                          if isinstance(t, Mapping)),
        "alerts": ", ".join(map(str, case.get("alerts") or ())),
        "opened": case.get("open_date"), "closed": case.get("close_date"),
        "closing note": case.get("closing_note"),
    })
    b.note(meta, "case-note", abstract="Imported from DFIR-IRIS", at=case.get("open_date"))

    iocs: dict[str, str] = {}  # IRIS ioc id -> observed-data id
    for ioc in listed(data, "iocs", _SOURCE):
        value = text(ioc.get("ioc_value"), 2048)
        kind = str(ioc.get("type_name") or (ioc.get("ioc_type") or {}).get("type_name") or "")
        if not value:
            continue
        made = b.observable(
            _IOC_KINDS.get(kind.lower()), value, kind,
            {"description": ioc.get("ioc_description"), "tags": ioc.get("ioc_tags"),
             "added by": ioc.get("added_by")},
            "ioc", ioc.get("ioc_uuid") or ioc.get("ioc_id") or value,
            at=ioc.get("ioc_added_on") or ioc.get("date_added"),
            tlp=_TLP.get(str(ioc.get("tlp_name") or "").lower()))
        if made:
            iocs[str(ioc.get("ioc_id"))] = made

    for t in listed(data, "tasks", _SOURCE):
        assignees = [a.get("user") or a.get("name") for a in t.get("task_assignees") or ()
                     if isinstance(a, Mapping)]
        who = person(b.member, assignees[0]) if assignees else None
        extra = b.summary_of({"tags": t.get("task_tags"),
                              "also assigned": ", ".join(map(str, assignees[1:])),
                              "closed": t.get("task_close_date")})
        desc = "\n".join(x for x in (text(t.get("task_description")), extra) if x) or None
        obj = task(creator=b.member, name=text(t.get("task_title"), 250) or "task",
                   marking=b.marking(), description=desc, assignee=who,
                   outcome=_STATUS.get(str(t.get("task_status") or "").lower(), "unknown"))
        b.add(b.settle(obj, "task", t.get("task_uuid") or t.get("id"),
                       at=t.get("task_open_date"), updated=t.get("task_last_update")), "tasks")

    for e in listed(data, "timeline", _SOURCE):
        start = when(e.get("event_date"))
        refs = [iocs[str(i.get("ioc_id"))] for i in e.get("iocs") or ()
                if isinstance(i, Mapping) and str(i.get("ioc_id")) in iocs]
        extra = b.summary_of({"assets": ", ".join(map(str, e.get("assets") or ())),
                              "tags": e.get("event_tags"), "raw": e.get("event_raw"),
                              "time zone": e.get("event_tz")})
        desc = "\n".join(x for x in (text(e.get("event_content")), extra) if x) or None
        category = word(e.get("category"))
        obj = event(creator=b.member, name=text(e.get("event_title"), 250) or "event",
                    marking=b.marking(), start=start, fidelity="second" if start else None,
                    source=text(e.get("event_source")), observable_refs=refs,
                    event_types=[category] if category else (), description=desc)
        b.add(b.settle(obj, "event", e.get("event_uuid") or e.get("event_id"),
                       at=e.get("event_date")), "events")

    for a in listed(data, "assets", _SOURCE):
        content = b.summary_of({
            "asset": a.get("asset_name"), "type": a.get("type"), "address": a.get("asset_ip"),
            "domain": a.get("asset_domain"), "compromise": a.get("asset_compromise_status"),
            "analysis": a.get("analysis_status"), "description": a.get("asset_description"),
            "info": a.get("asset_info"), "tags": a.get("asset_tags")})
        b.note(content, "asset", a.get("asset_uuid") or a.get("asset_id"),
               abstract=f"Asset {a.get('asset_name')}", at=a.get("date_added"))

    for ev in listed(data, "evidences", _SOURCE):
        digest = str(ev.get("file_hash") or "").strip().lower()
        what = text(ev.get("filename"), 250) or "evidence"
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            obj = evidence_item(
                creator=b.member, case_id=b.case_id, name=what, sha256=digest,
                size=int(ev.get("file_size") or 0),
                kept_at=f"DFIR-IRIS datastore (file {ev.get('file_uuid') or ev.get('id')})",
                collected_by=person(b.member, ev.get("added_by")) or f"{b.member}:unknown",
                collected_how="registered in DFIR-IRIS; imported", marking=b.marking())
            b.add(b.settle(obj, "evidence", ev.get("file_uuid") or ev.get("id"),
                           at=ev.get("date_added")), "evidence")
        else:
            content = b.summary_of({"evidence": what, "hash": ev.get("file_hash"),
                                    "size": ev.get("file_size"), "added by": ev.get("added_by")})
            b.note(content, "evidence-note", ev.get("file_uuid") or ev.get("id"),
                   abstract=f"Evidence {what}", at=ev.get("date_added"))

    for n in listed(data, "notes", _SOURCE):
        b.note(text(n.get("note_content")), "note", n.get("note_uuid") or n.get("note_id"),
               abstract=text(n.get("note_title"), 250), at=n.get("note_creationdate"),
               updated=n.get("note_lastupdate"))
        for c in n.get("comments") or ():
            _comment(b, c, "note-comment")
    for c in listed(data, "comments", _SOURCE):
        _comment(b, c, "comment")


def _comment(b: Builder, c: Any, kind: str) -> None:
    if isinstance(c, Mapping):
        b.note(text(c.get("comment_text")), kind, c.get("comment_uuid") or c.get("comment_id"),
               abstract=f"Comment by {c.get('comment_by') or c.get('user') or '?'}",
               at=c.get("comment_date"))
