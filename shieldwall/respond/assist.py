"""Request -> dispatch -> hand-back: a member asks for help, the cell sends a team, the case
goes back with a summary.

- `request_assistance` (the member's node): an assistance request about the member's own
  incident, addressed to the coordination cell, marked at the level the member chose and
  named to the member and the cell. The incident becomes a case (Incident Core extension
  present) and, when it is AMBER+STRICT, is named to the cell too: the cell cannot judge a
  request about an incident it may not read.
- `dispatch_team` (the cell's node): the team from the roster, its lead and the
  reasoning; the decision goes to the append-only consultation log (subject: the
  request), beside the consultation's recommendation for the incident's campaign.
- `close` hands back: on the cell's node a new version of its dispatch, on the member's a
  new version of its request, each with a summary (only the creator versions its object).

Federation carries requests to the cell and dispatches back (TAXII push and pull): the
request names the cell, the dispatch names the requester and the team's members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shieldwall.respond import roster
from shieldwall.respond.cases import (
    Case,
    load_case,
    put_items,
    rows_by_ids,
    valid_dispatch,
)
from shieldwall.respond.model import (
    ASSISTANCE_REQUEST,
    DISPATCH,
    INCIDENT_CORE_EXTENSION,
    Marking,
    RespondError,
    assistance_request,
    case_audience,
    dispatch,
    link,
    next_version,
)
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Query, Store

# The consultation log's fields for respond's decisions.
DISPATCH_DECISIONS = ("dispatch", "hand-back")
RECOMMENDATION = "request-assistance"
POLICY_VERSION = "respond-v1"


def _own_incident(store: Store, member: str, incident_id: str, access: Access
                  ) -> dict[str, Any]:
    row = store.get(incident_id, access)
    if row is None or row.type != "incident":
        raise RespondError(f"no incident {incident_id} this node may read")
    inc = row.obj()
    if inc.get("created_by_ref") != member_identity_id(member):
        raise RespondError(f"{incident_id} is another member's incident: a member asks for "
                           "help with its own (that member's node makes the request)")
    return inc


def _as_case(inc: dict[str, Any], audience: Sequence[str]) -> dict[str, Any] | None:
    """The incident's new version as a case (Incident Core present, investigation open,
    named to `audience` when it is AMBER+STRICT), or None when it is one already."""
    changes: dict[str, Any] = {}
    exts = dict(inc.get("extensions") or {})
    core = dict(exts.get(INCIDENT_CORE_EXTENSION) or {"extension_type": "property-extension",
                                                      "determination": "suspected"})
    if core.get("investigation_status") in (None, "new"):
        core["investigation_status"] = "open"
    if exts.get(INCIDENT_CORE_EXTENSION) != core:
        changes["extensions"] = {**exts, INCIDENT_CORE_EXTENSION: core}
    m = Marking.of(inc)
    if m.tlp == TLP.AMBER_STRICT and not set(audience) <= set(m.audience):
        changes.update(m.widened(audience).props())
    return next_version(inc, **changes) if changes else None


def request_assistance(store: Store, *, member: str, cell: str, incident_id: str,
                       needs: Sequence[str], access: Access, tlp: TLP = TLP.AMBER_STRICT,
                       description: str | None = None) -> dict[str, Any]:
    """The member's request for help with its incident; stored with its link to the case
    (and the incident's new version when it needs one)."""
    if tlp >= TLP.RED:
        raise RespondError("a TLP:RED request never leaves this node: the cell would never "
                           "receive it (choose amber+strict)")
    inc = _own_incident(store, member, incident_id, access)
    if Marking.of(inc).tlp >= TLP.RED:
        raise RespondError(f"{incident_id} is TLP:RED and never leaves this node: re-mark it "
                           "(shieldwall incident update) before asking for help with it")
    case = load_case(store, incident_id, access)
    open_ = [r for r in case.requests if r.get("status") == "open"]
    if open_:
        raise RespondError(f"{open_[0]['id']} already asks for help with this incident")
    audience = case_audience(member, cell)
    req = assistance_request(requester=member, cell=cell, incident_id=incident_id,
                             needs=needs, marking=Marking(tlp, audience),
                             description=description)
    newer = _as_case(inc, audience)
    put_items(store, member, [*([newer] if newer else []), req, link(req, incident_id)])
    return req


# ---- what the cell sees ----------------------------------------------------------------


@dataclass
class RequestView:
    request: dict[str, Any]
    dispatch: dict[str, Any] | None = None
    ignored: list[dict[str, Any]] = field(default_factory=list)
    campaign_id: str | None = None
    consultation: str | None = None  # the campaign's latest decision, when there is one
    seq: int = 0  # where the node stored it: the cursor of the next page

    @property
    def status(self) -> str:
        if self.request.get("status") != "open":
            return str(self.request.get("status"))
        if self.dispatch is not None:
            return str(self.dispatch.get("status"))
        return "awaiting dispatch"


def _campaigns(store: Store, access: Access) -> dict[str, str]:
    """incident id -> the candidate campaign (correlation) that groups it, among those
    `access` may read: one pass over the campaigns, however many requests are listed."""
    out: dict[str, str] = {}
    for row in store.iter_query(Query(types=["campaign"], access=access)):
        refs = row.obj().get("x_shieldwall_object_refs")
        for ref in refs if isinstance(refs, list) else ():
            if isinstance(ref, str) and ref.startswith("incident--"):
                out.setdefault(ref, row.id)
    return out


def _views(store: Store, requests: list[dict[str, Any]], access: Access,
           with_campaigns: bool) -> list[RequestView]:
    """Each request (spoken for by its creator) with its dispatches, found through the
    links to its case (indexed), and its campaign's latest consultation decision."""
    from shieldwall.assess.consultation import read_log

    requests = [r for r in requests
                if r.get("created_by_ref") == member_identity_id(str(r.get("requester")))]
    # A dispatch is linked to its request as well as to its case (`dispatch_team`): the
    # request's few links, not the case's every item, say which dispatches answer it.
    # `Store.linked` asks PostgreSQL a few ids a query (its planner scans every object
    # for 50 at once: 2-4 s at 10,000 cases).
    mark = f'"source_ref":"{DISPATCH}--'
    asked = [r["id"] for r in requests]
    linked = {rel.obj().get("source_ref") for rel in store.linked(asked, access)
              if mark in rel.json}
    ids = sorted(i for i in linked if isinstance(i, str))
    dispatches = [r.obj() for r in rows_by_ids(store, ids, access)]
    answering: dict[str, list[dict[str, Any]]] = {}
    for d in sorted(dispatches, key=lambda d: d["created"]):
        answering.setdefault(str(d.get("request_ref")), []).append(d)
    campaigns = _campaigns(store, access) if with_campaigns else {}
    out = []
    for req in requests:
        view = RequestView(req)
        for d in answering.get(req["id"], ()):
            if valid_dispatch(d, req):
                view.dispatch = d
            else:
                view.ignored.append(d)
        view.campaign_id = campaigns.get(str(req.get("incident_ref")))
        if view.campaign_id:
            log = read_log(store, view.campaign_id)
            if log:
                last = log[-1]
                view.consultation = (f"{last.decision} by {last.decided_by} "
                                     f"at {last.recorded} (recommended {last.recommendation})")
        out.append(view)
    return out


def list_requests(store: Store, access: Access, *, limit: int = 100,
                  after_seq: int | None = None, with_campaigns: bool = True
                  ) -> list[RequestView]:
    """A page of the requests `access` may read (in the order the node stored them; the
    next page starts after the last one's `seq`, `RequestView.seq`), each with its valid
    dispatch (the others are `ignored`), its incident's campaign and the consultation's
    latest decision on it."""
    page = store.query(Query(types=[ASSISTANCE_REQUEST], access=access, limit=limit,
                             after_seq=after_seq))
    views = _views(store, [r.obj() for r in page.rows], access, with_campaigns)
    seqs = {r.id: r.seq for r in page.rows}
    for v in views:
        v.seq = seqs[v.request["id"]]
    return views


def find_request(store: Store, request_id: str, access: Access) -> RequestView:
    row = store.get(request_id, access)
    views = _views(store, [row.obj()], access, False) if row and row.type == \
        ASSISTANCE_REQUEST else []
    if not views:
        raise RespondError(f"no assistance request {request_id} this node may read")
    return views[0]


# ---- dispatch and hand-back ----------------------------------------------------------------


def dispatch_team(store: Store, *, cell: str, request_id: str, team: Sequence[str], lead: str,
                  reason: str, by: str, access: Access) -> dict[str, Any]:
    """The cell's dispatch of `team` for a request addressed to it, recorded with `by`'s
    reasoning in the consultation log; the team's responders become on-mission."""
    from shieldwall.assess.consultation import append_decision

    view = find_request(store, request_id, access)
    req = view.request
    if req.get("cell") != cell:
        raise RespondError(f"the request is addressed to {req.get('cell')}, not to {cell}: "
                           "only the coordination cell's node dispatches")
    if req.get("status") != "open":
        raise RespondError(f"the request is {req.get('status')}")
    if view.dispatch is not None and view.dispatch.get("status") != "closed":
        raise RespondError(f"a team is already dispatched ({view.dispatch['id']}); "
                           "close it first (assist close)")
    roster.check_team(store, team)
    obj = dispatch(request=req, cell=cell, team=team, lead=lead, reason=reason)
    campaign = _campaigns(store, access).get(str(req.get("incident_ref")))
    append_decision(store, request_id, by=by or cell, decision="dispatch", reason=reason,
                    recommendation=RECOMMENDATION, policy_version=POLICY_VERSION,
                    snapshot={"dispatch": obj, "request_ref": request_id,
                              "incident_ref": req.get("incident_ref"),
                              "campaign_ref": campaign},
                    allowed=DISPATCH_DECISIONS)
    put_items(store, cell, [obj, link(obj, str(req["incident_ref"])), link(obj, request_id)])
    roster.set_availability(store, obj["team"], "on-mission")
    return obj


def close(store: Store, *, member: str, request_id: str, summary: str, access: Access,
          by: str | None = None) -> dict[str, Any]:
    """Hand the case back: the cell closes its dispatch, the requester its request, each
    with `summary`; anyone else is refused (only the creator versions its object)."""
    from shieldwall.assess.consultation import append_decision

    text = summary.strip()
    if not text:
        raise RespondError("a hand-back needs its summary (--summary)")
    view = find_request(store, request_id, access)
    req = view.request
    if member == req.get("cell"):
        if view.dispatch is None or view.dispatch.get("status") == "closed":
            raise RespondError("no dispatched team to hand back")
        new = next_version(view.dispatch, status="closed", summary=text)
        append_decision(store, request_id, by=by or member, decision="hand-back",
                        reason=text, recommendation=RECOMMENDATION,
                        policy_version=POLICY_VERSION,
                        snapshot={"dispatch": new, "request_ref": request_id},
                        allowed=DISPATCH_DECISIONS)
        put_items(store, member, [new])
        roster.set_availability(store, new["team"], "available")
        return new
    if member == req.get("requester"):
        new = next_version(req, status="closed", summary=text)
        put_items(store, member, [new])
        return new
    raise RespondError("only the requesting member or the cell it asked closes a request")


def case_of(store: Store, request: dict[str, Any], access: Access) -> Case:
    return load_case(store, str(request["incident_ref"]), access)
