"""The dashboard's rapid-reaction pages: assistance requests, the case list and the case page.

Every read goes through the signed-in member's `Access` (the one TAXII gives that member):
the requests and cases a page lists are the store's answer to that `Access`, and a case is
`respond.cases.load_case` under it, so an item the member may not read is absent from the
page as it is from TAXII. A case the member may not read answers the same 404 as one that
never existed.

Reads are bounded, whatever the size of the store or of a case: a page of requests is one
query for the requests, one for their links, one for their dispatches and one that asks
whether a next page exists, plus one for the incidents of the case list; a case page is
`load_case` (the incident, its links, its items by id in batches of 500), `verify_case`
(its custody in the same way, and the node keys) and the member names. No query runs per
listed item.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from shieldwall.respond.assist import RequestView, list_requests
from shieldwall.respond.cases import Case, open_case, rows_by_ids
from shieldwall.respond.model import (
    ASSISTANCE_REQUEST,
    FIDELITIES,
    TASK_OUTCOMES,
    Marking,
    RespondError,
    observable_text,
)
from shieldwall.respond.verify import Report, verify_case
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Query, Store
from shieldwall.store.cursors import CursorError, Cursors
from shieldwall.web.picture import incident_core

PAGE = 50  # requests or cases a page
_NOT_SHARED = "no such case, or not shared with your member"


def text(value: Any) -> str:
    """A property as text for a page: a stored object may hold anything (see shapes.py)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def level(obj: Mapping[str, Any]) -> TLP:
    """The TLP an item carries (its most restrictive level); AMBER when it names none."""
    try:
        return Marking.of(obj).tlp
    except (TypeError, ValueError, AttributeError):
        return TLP.AMBER


def _us(value: Any) -> int | None:
    try:
        return parse_ts(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


# ---- a page of requests ----------------------------------------------------------------------


def request_rows(views: list[RequestView]) -> list[dict[str, Any]]:
    out = []
    for v in views:
        r, d = v.request, v.dispatch
        out.append({
            "id": text(r.get("id")), "incident": text(r.get("incident_ref")),
            "requester": text(r.get("requester")), "cell": text(r.get("cell")),
            "needs": [text(n) for n in r.get("needs") or [] if isinstance(n, str)]
            if isinstance(r.get("needs"), list) else [],
            "status": v.status, "created": text(r.get("created")),
            "description": text(r.get("description")), "summary": text(r.get("summary")),
            "team": [text(t) for t in (d or {}).get("team") or []]
            if isinstance((d or {}).get("team"), list) else [],
            "lead": text((d or {}).get("lead")), "dispatch": text((d or {}).get("id")),
            "ignored": len(v.ignored), "tlp": level(r),
        })
    return out


def case_rows(store: Store, access: Any, views: list[RequestView]) -> list[dict[str, Any]]:
    """Requests joined with their incidents (one query for the page): a case is an
    incident a member asked help for; one whose incident the reader may not read is left
    out, as its page would answer 404."""
    rows = request_rows(views)
    incidents = {r.id: r.obj() for r in rows_by_ids(store, [r["incident"] for r in rows],
                                                    access) if r.type == "incident"}
    out = []
    seen: set[str] = set()
    for row in rows:
        inc = incidents.get(row["incident"])
        if inc is None or row["incident"] in seen:
            continue
        seen.add(row["incident"])
        core = incident_core(inc)
        out.append({**row, "name": text(inc.get("name")) or row["incident"],
                    "investigation": text(core.get("investigation_status")),
                    "incident_tlp": level(inc), "modified": text(inc.get("modified"))})
    return out


# ---- a case page -----------------------------------------------------------------------------


def tasks_board(case: Case) -> list[tuple[str, list[dict[str, Any]]]]:
    """Tasks in columns by status (`outcome`), in the vocabulary's order; a status outside
    it gets a column of its own at the end."""
    columns: dict[str, list[dict[str, Any]]] = {o: [] for o in TASK_OUTCOMES}
    for t in sorted(case.tasks, key=lambda t: (-_int(t.get("priority")), text(t.get("name")))):
        columns.setdefault(text(t.get("outcome")) or "unknown", []).append(t)
    return list(columns.items())


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def timeline(case: Case) -> list[dict[str, Any]]:
    """Events by time (`start_time`, else when recorded), each with its place on the
    drawn axis (`at`, 0-100 %) and its time's fidelity."""
    rows = []
    for e in case.events:
        start = _us(e.get("start_time"))
        when = start if start is not None else _us(e.get("created"))
        fidelity = text(e.get("start_time_fidelity")) if start is not None else ""
        rows.append({"obj": e, "us": when if when is not None else 0,
                     "time": text(e.get("start_time") if start is not None
                                  else e.get("created")),
                     "fidelity": fidelity if fidelity in FIDELITIES else "",
                     "recorded": start is None})
    rows.sort(key=lambda r: (r["us"], text(r["obj"].get("created")), text(r["obj"].get("id"))))
    if rows:
        lo, hi = rows[0]["us"], rows[-1]["us"]
        for r in rows:
            r["at"] = 50.0 if hi == lo else round(100.0 * (r["us"] - lo) / (hi - lo), 2)
    return rows


def custody_chains(case: Case, report: Report) -> list[dict[str, Any]]:
    """Each evidence item with its custody events (by time, then chain position) and the
    verification findings about it or its events."""
    by_evidence: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in case.custody:
        by_evidence[text(e.get("evidence_ref"))].append(e)
    about: dict[str, list[Any]] = defaultdict(list)
    for f in report.findings:
        about[f.object_id].append(f)
    out = []
    for ev in sorted(case.evidence, key=lambda e: text(e.get("created"))):
        events = sorted(by_evidence.get(text(ev.get("id")), []),
                        key=lambda c: (text(c.get("occurred")), _int(c.get("chain_seq"))))
        findings = list(about.get(text(ev.get("id")), []))
        out.append(_chain(ev, events, about, findings))
    # custody events about an item the reader does not hold (not shared, or gone): shown
    # under the id they name, with what verification says of them
    held = {text(ev.get("id")) for ev in case.evidence}
    for ref, events in sorted(by_evidence.items()):
        if ref not in held:
            events.sort(key=lambda c: (text(c.get("occurred")), _int(c.get("chain_seq"))))
            out.append(_chain(None, events, about, list(about.get(ref, [])), ref=ref))
    return out


def _chain(ev: dict[str, Any] | None, events: list[dict[str, Any]],
           about: Mapping[str, list[Any]], findings: list[Any], ref: str = ""
           ) -> dict[str, Any]:
    for c in events:
        findings += about.get(text(c.get("id")), [])
    return {"obj": ev, "ref": ref, "events": events, "findings": findings,
            "event_findings": {text(c.get("id")): about.get(text(c.get("id")), [])
                               for c in events}}


def observables(case: Case) -> list[dict[str, Any]]:
    """Each observable (`TYPE:VALUE`) with the hunt results recorded for it: the timeline
    events that refer to it (`record_hits` writes one per hit)."""
    hits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in case.events:
        refs = e.get("x_shieldwall_observable_refs")
        for ref in refs if isinstance(refs, list) else ():
            hits[text(ref)].append(e)
    out = []
    for od in case.observed:
        out.append({"obj": od, "value": observable_text(od) or text(od.get("id")),
                    "hits": sorted(hits.get(text(od.get("id")), []),
                                   key=lambda e: text(e.get("start_time")))})
    return sorted(out, key=lambda o: o["value"])


def case_context(store: Store, case_id: str, access: Any) -> dict[str, Any]:
    try:
        case = open_case(store, case_id, access)
    except RespondError:
        raise HTTPException(404, _NOT_SHARED) from None
    assert case.incident is not None
    report = verify_case(store, case_id, access)
    return {
        "case": case, "incident": case.incident, "core": incident_core(case.incident),
        "help_request": case.request, "dispatch": case.dispatch, "board": tasks_board(case),
        "timeline": timeline(case), "evidence": custody_chains(case, report),
        "report": report, "observables": observables(case), "notes": case.notes,
        "impacts": case.impacts, "other": case.other,
    }


# ---- routes ----------------------------------------------------------------------------------


def add_routes(app: FastAPI, store: Store, page_viewer: Callable[[Request], Any],
               render: Callable[..., Response], cursors: Cursors) -> None:
    """The pages, on the dashboard's `app` (its viewer, renderer and cursor key)."""
    Viewer = Annotated[Any, Depends(page_viewer)]

    def opened(viewer: Any, token: str, purpose: str) -> int | None:
        if not token:
            return None
        try:
            return cursors.open(token, purpose, viewer.member.name)
        except CursorError:
            raise HTTPException(400, "after: not a position this dashboard gave your "
                                     "member; start from the first page") from None

    def page(viewer: Any, token: str, purpose: str) -> tuple[list[RequestView], str]:
        """A page of the requests the viewer may read, and the sealed cursor of the next
        (empty on the last page)."""
        views = list_requests(store, viewer.access, limit=PAGE,
                              after_seq=opened(viewer, token, purpose), with_campaigns=False)
        # one probe for a next page: a request that does not speak for its requester is
        # left out of a page (`assist._views`), so the page's length cannot tell
        more = bool(views) and bool(store.query(Query(
            types=[ASSISTANCE_REQUEST], access=viewer.access, after_seq=views[-1].seq,
            limit=1)).rows)
        nxt = cursors.seal(views[-1].seq, purpose, viewer.member.name) if more else ""
        return views, nxt

    @app.get("/assistance", response_class=HTMLResponse)
    def assistance_page(request: Request, viewer: Viewer, after: str = "") -> Response:
        views, nxt = page(viewer, after, "dashboard-assistance")
        return render(request, "assist.html", viewer, rows=request_rows(views), next=nxt,
                      first=not after)

    @app.get("/cases", response_class=HTMLResponse)
    def cases_page(request: Request, viewer: Viewer, after: str = "") -> Response:
        views, nxt = page(viewer, after, "dashboard-cases")
        return render(request, "cases.html", viewer,
                      rows=case_rows(store, viewer.access, views), next=nxt, first=not after)

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_page(request: Request, viewer: Viewer, case_id: str) -> Response:
        return render(request, "cases_case.html", viewer,
                      **case_context(store, case_id, viewer.access),
                      level=level, text=text)
