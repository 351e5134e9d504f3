"""A case in the store: its items written as the node's member, read through an `Access`.

Every read here takes the reader's `Access` (the policy decision `taxii.access_for` makes,
passed in by the caller: respond sits below policy in the house), so what a case shows a
reader is exactly what TAXII, federation and the dashboard would give it: the store
applies it in SQL. Nothing here filters by hand.

Items are stored as the node's own member (`Provenance(member, "local")`), after
`stix.validate.object_error`: a malformed item is refused before it reaches the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shieldwall.respond.model import (
    ASSISTANCE_REQUEST,
    CASE_LINK,
    CUSTODY_EVENT,
    DISPATCH,
    EVIDENCE,
    SHIELDWALL_EXTENSION,
    Marking,
    RespondError,
    case_audience,
    link,
    next_version,
    published_objects,
)
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.validate import object_error
from shieldwall.store import Access, Provenance, PutResult, Query, Store, StoredVersion
from shieldwall.store.types import STATUS_PROPERTY

LOCAL = "local"  # the channel of what the node's own member writes through respond


def ensure_published(store: Store, member: str) -> None:
    """Store Shieldwall's extension-definition (and the identity that made it) once, so
    peers receive the definition of the types they are sent (TLP:CLEAR)."""
    objs = published_objects()
    if store.get(objs[-1]["id"]) is None:
        store.put_many(objs, Provenance(member, LOCAL))


def put_items(store: Store, member: str, objs: Sequence[Mapping[str, Any]]) -> PutResult:
    """Validate and store `objs` as `member`'s node; refused as a whole when one is
    malformed or the store rejects one (a version by someone other than its creator is
    refused by the caller's checks before; the store refuses conflicts)."""
    for obj in objs:
        why = object_error(dict(obj))
        if why:
            raise RespondError(f"{obj.get('type')} {obj.get('id')}: {why}")
    ensure_published(store, member)
    result = store.put_many([dict(o) for o in objs], Provenance(member, LOCAL))
    if result.rejected:
        oid, why = result.rejected[0]
        raise RespondError(f"{oid}: {why}")
    return result


def add_to_case(store: Store, member: str, case_id: str, *items: Mapping[str, Any]
                ) -> list[dict[str, Any]]:
    """Store `items` (of `member`'s node) with their links to the case."""
    objs: list[dict[str, Any]] = []
    for item in items:
        objs += [dict(item), link(item, case_id)]
    put_items(store, member, objs)
    return objs


def own_version(store: Store, member: str, item_id: str, access: Access, **changes: Any
                ) -> dict[str, Any]:
    """A new version of an item `member` created, with `changes`; refused for anyone
    else's (only an object's creator versions it: make a note that refers to it)."""
    row = store.get(item_id, access)
    if row is None:
        raise RespondError(f"no {item_id} this node may read")
    obj = row.obj()
    if obj.get("created_by_ref") != member_identity_id(member):
        raise RespondError(f"{item_id} was created by another member: only its creator makes "
                           "new versions (add a note that refers to it instead)")
    new = next_version(obj, **changes)
    put_items(store, member, [new])
    return new


# ---- reading a case ------------------------------------------------------------------------


@dataclass
class Case:
    """What one reader may see of a case, by kind; each list holds latest versions."""

    id: str
    incident: dict[str, Any] | None
    requests: list[dict[str, Any]] = field(default_factory=list)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    ignored_dispatches: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    impacts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    observed: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    custody: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)

    @property
    def request(self) -> dict[str, Any] | None:
        """The requesting member's request (the latest made; a case has one as a rule)."""
        return max(self.requests, key=lambda r: r["created"]) if self.requests else None

    @property
    def dispatch(self) -> dict[str, Any] | None:
        return max(self.dispatches, key=lambda d: d["created"]) if self.dispatches else None

    @property
    def requester(self) -> str | None:
        r = self.request
        return str(r["requester"]) if r else None

    @property
    def cell(self) -> str | None:
        r = self.request
        return str(r["cell"]) if r else None

    @property
    def team(self) -> list[str]:
        d = self.dispatch
        return list(d["team"]) if d and d.get("status") != "closed" else []

    def audience(self) -> tuple[str, ...]:
        """Who the case's AMBER+STRICT items are named to, from its request and dispatch."""
        if self.request is None:
            return ()
        return case_audience(str(self.requester), str(self.cell), self.team)

    def timeline(self) -> list[dict[str, Any]]:
        """Events by time (`start_time`, else when recorded)."""
        return sorted(self.events, key=lambda e: (e.get("start_time") or e["created"],
                                                  e["created"]))


_KINDS = {"task": "tasks", "event": "events", "impact": "impacts", "note": "notes",
          "observed-data": "observed", EVIDENCE: "evidence", CUSTODY_EVENT: "custody"}


def valid_dispatch(d: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    """A dispatch counts for a request only when it answers it and comes from the cell the
    request was addressed to (its creator is that cell; the store's write rules already
    refuse a dispatch in the name of a cell from any other node)."""
    return (d.get("request_ref") == request.get("id") and d.get("cell") == request.get("cell")
            and d.get("created_by_ref") == member_identity_id(str(request.get("cell"))))


def rows_by_ids(store: Store, ids: Iterable[str], access: Access) -> list[StoredVersion]:
    """The latest versions of `ids` that `access` may read (500 ids a query)."""
    wanted = sorted(set(ids))
    out: list[StoredVersion] = []
    for i in range(0, len(wanted), 500):
        out += store.query(Query(ids=wanted[i:i + 500], access=access)).rows
    return out


def load_case(store: Store, case_id: str, access: Access) -> Case:
    """The case as `access` may see it: the incident, and every item linked to it that the
    reader may read (an item it may not read is absent, as is its link)."""
    if not case_id.startswith("incident--"):
        raise RespondError(f"{case_id!r} is not a case (an incident id)")
    inc = store.get(case_id, access)
    case = Case(case_id, inc.obj() if inc else None)
    sources = [r.obj()["source_ref"] for r in store.linked([case_id], access)
               if r.obj().get("target_ref") == case_id
               and r.obj().get("relationship_type") == CASE_LINK]
    requests: list[dict[str, Any]] = []
    dispatches: list[dict[str, Any]] = []
    for row in rows_by_ids(store, sources, access):
        obj = row.obj()
        kind = obj.get("type")
        if kind == ASSISTANCE_REQUEST:
            if (obj.get("incident_ref") == case_id and obj.get("created_by_ref")
                    == member_identity_id(str(obj.get("requester")))):
                requests.append(obj)
        elif kind == DISPATCH:
            dispatches.append(obj)
        elif kind in _KINDS:
            getattr(case, _KINDS[str(kind)]).append(obj)
        else:
            case.other.append(obj)
    case.requests = requests
    req = case.request
    for d in dispatches:
        (case.dispatches if req and valid_dispatch(d, req) else case.ignored_dispatches
         ).append(d)
    return case


def item_marking(case: Case, tlp: TLP | None = None) -> Marking:
    """The marking of a new item of `case`: `tlp` (default: the request's level, else
    AMBER+STRICT), named to the case's audience."""
    level = tlp if tlp is not None else (
        Marking.of(case.request).tlp if case.request else TLP.AMBER_STRICT)
    return Marking(level, case.audience())


def share_with_team(store: Store, member: str, case: Case) -> list[dict[str, Any]]:
    """New versions of `member`'s own items of the case (the incident too) whose audience
    holds the requester and the cell but not yet the whole case audience: after a
    dispatch, what the member shared with the cell reaches the team. An item named to a
    narrower audience (not the cell) stays as it is; RED never federates and stays.
    Evidence items and custody events stay too: each version of an item is attested by
    a signed custody event, and a custody event is written once (respond/custody.py);
    they are named to the case's audience when recorded."""
    audience = set(case.audience())
    if not audience:
        return []
    core = {str(case.requester), str(case.cell)}
    mine = member_identity_id(member)
    items = [case.incident] if case.incident else []
    items += [*case.requests, *case.tasks, *case.events, *case.impacts, *case.notes,
              *case.observed, *case.other]
    out: list[dict[str, Any]] = []
    for obj in items:
        if obj.get("created_by_ref") != mine:
            continue
        m = Marking.of(obj)
        if m.tlp < TLP.AMBER or m.tlp >= TLP.RED or not core <= set(m.audience) \
                or audience <= set(m.audience):
            continue
        wider = m.widened(audience).props()
        out.append(next_version(obj, **wider))
        if obj is not case.incident:  # its link says it belongs to the case: widened too
            out.append(next_version(link(obj, case.id), **wider))
    if out:
        put_items(store, member, out)
    return out


def is_shieldwall_object(obj: Mapping[str, Any]) -> bool:
    return SHIELDWALL_EXTENSION in (obj.get("extensions") or {})


# ---- working the case --------------------------------------------------------------------


def open_case(store: Store, case_id: str, access: Access) -> Case:
    """The case for a command that adds to it: refused when the reader cannot see its
    incident or it has no request (a case is an incident a member asked help for)."""
    case = load_case(store, case_id, access)
    if case.incident is None:
        raise RespondError(f"no case {case_id} this node may read")
    if case.request is None and case.incident.get("created_by_ref") != access_identity(access):
        raise RespondError(f"{case_id} is no case this node may read: no assistance request "
                           "about it reaches this member")
    return case


def access_identity(access: Access) -> str | None:
    """The member identity an `Access` reads as (one, for a member's Access)."""
    return next(iter(access.identities), None) if len(access.identities) == 1 else None


def add_task(store: Store, member: str, case: Case, *, name: str, tlp: TLP | None = None,
             **fields: Any) -> dict[str, Any]:
    """A task of the case, by `member`'s node (`model.task` fields: assignee, due,
    outcome, description, priority)."""
    from shieldwall.respond.model import task

    obj = task(creator=member, name=name, marking=item_marking(case, tlp), **fields)
    add_to_case(store, member, case.id, obj)
    return obj


TASK_CHANGES = {"outcome": "outcome", "assignee": "x_shieldwall_assignee",
                "due": "x_shieldwall_due", "name": "name", "description": "description",
                "priority": "priority"}


def update_task(store: Store, member: str, task_id: str, access: Access, **changes: Any
                ) -> dict[str, Any]:
    """A new version of one of `member`'s tasks with `changes` (outcome, assignee, due,
    name, description, priority; None leaves one as it is), checked as `model.task`."""
    from shieldwall.respond.model import task

    given = {k: v for k, v in changes.items() if v is not None}
    unknown = set(given) - set(TASK_CHANGES)
    if unknown:
        raise RespondError(f"a task has no {', '.join(sorted(unknown))}")
    row = store.get(task_id, access)
    if row is None or row.type != "task":
        raise RespondError(f"no task {task_id} this node may read")
    cur = row.obj()
    merged = {k: cur.get(p) for k, p in TASK_CHANGES.items()} | given
    checked = task(creator=member, marking=Marking.of(cur), name=str(merged.pop("name")),
                   **{k: v for k, v in merged.items() if v is not None})
    props = {p: checked.get(p) for p in TASK_CHANGES.values()}
    return own_version(store, member, task_id, access, **props)


def add_event(store: Store, member: str, case: Case, *, name: str, tlp: TLP | None = None,
              **fields: Any) -> dict[str, Any]:
    """A timeline event (`model.event` fields: start, fidelity, status, source,
    sighting_refs, observable_refs, event_types, description)."""
    from shieldwall.respond.model import event

    obj = event(creator=member, name=name, marking=item_marking(case, tlp), **fields)
    add_to_case(store, member, case.id, obj)
    return obj


def add_note(store: Store, member: str, case: Case, content: str, *, tlp: TLP | None = None,
             refs: Sequence[str] = ()) -> dict[str, Any]:
    from shieldwall.respond.model import note

    obj = note(creator=member, case_id=case.id, content=content,
               marking=item_marking(case, tlp), object_refs=refs)
    add_to_case(store, member, case.id, obj)
    return obj


def add_observable(store: Store, member: str, case: Case, text: str, *,
                   tlp: TLP | None = None, first_observed: str | None = None
                   ) -> dict[str, Any]:
    """An observable (`TYPE:VALUE`, canonicalised) of the case; the same value again is
    refused by the reader's own eyes: the case already holds it."""
    from shieldwall.respond.model import observable, observable_text

    obj = observable(text, creator=member, marking=item_marking(case, tlp),
                     first_observed=first_observed)
    value = observable_text(obj)
    if value in {observable_text(o) for o in case.observed}:
        raise RespondError(f"the case already holds {value}")
    add_to_case(store, member, case.id, obj)
    return obj


# ---- statistics ------------------------------------------------------------------------

# What the statistics count: each type by the property that holds its status, which the
# store keeps as a column when it writes them (`objects.status`, migration 0015).
STATUS_OF = {kind: STATUS_PROPERTY[kind] for kind in (ASSISTANCE_REQUEST, DISPATCH, "task")}


def statistics(store: Store, access: Access, *, by_key: bool = True
               ) -> dict[str, dict[str, int]]:
    """Requests, dispatches and tasks by status, counting only what `access` may read:
    one grouped query on the stored status column under the store's own Access clause
    (`store.where`), so a count holds exactly the rows a list would show the reader and
    no row's JSON is read (20,000 cases: 100,000 tasks). The clause tests the reader's
    names against each row's audience key (`add_access(by_key=True)`, migration 0017):
    the keys naming the reader are found once, and the count reads one index
    (`ix_objects_status`), not an audience lookup a row (`by_key=False`: the lookup a row,
    as before 0017; the same counts, for the benchmark's comparison). A row of these
    types without its status (every inbound path refuses one) is not counted."""
    from shieldwall.store.where import add_access, where_of

    w = where_of(Query(types=list(STATUS_OF)), "?" if store.dialect == "sqlite" else "%s")
    add_access(w, access, by_key=by_key)
    sql = (f"SELECT o.type, o.status, count(*) FROM objects o{w.sql()} "
           "AND o.status IS NOT NULL GROUP BY 1, 2")
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(sql, tuple(w.params)).all()
    out: dict[str, dict[str, int]] = {kind: {} for kind in STATUS_OF}
    for kind, status, n in sorted(rows, key=lambda r: (str(r[0]), str(r[1]))):
        out[str(kind)][str(status)] = int(n)
    return out
