"""The TAXII 2.1 API of a node (FastAPI): discovery, API root, collections, objects,
manifest, versions, status; every read and write decided by `shieldwall.policy`.

Reads never parse stored objects: an envelope is the stored canonical JSON of each
version joined between a few bytes of framing, so a page costs one indexed query and
one string join (bench/taxii_bench.py holds the figures).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shieldwall.policy import (
    HELD_COLUMNS,
    Collection,
    Existing,
    Member,
    Members,
    held_objects,
    may_read,
    may_write,
    member_identity_id,
    write_refusal,
)
from shieldwall.policy.access import access_for
from shieldwall.stix.bounded_json import TooDeep, oversized
from shieldwall.stix.bounded_json import loads as bounded_loads
from shieldwall.stix.markings import (
    KNOWN_TLP_REFS,
    TLP,
    declared_tlp,
    marking_refs,
    stricter,
)
from shieldwall.stix.outbound import held_text
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts
from shieldwall.store import Provenance, Store
from shieldwall.store import Query as StoreQuery
from shieldwall.store.audience import record_tlp_definitions, stored_tlp_markings
from shieldwall.store.cursors import CursorError, Cursors
from shieldwall.store.types import PageRow
from shieldwall.taxii import errors
from shieldwall.taxii.auth import (
    CACHE_SECONDS,
    CHALLENGE,
    FailedLogins,
    RateLimit,
    TokenCache,
    authenticate,
    from_cache,
)
from shieldwall.taxii.errors import TaxiiError, not_found
from shieldwall.taxii.media import STIX_21, TAXII_21, accepts_taxii, is_taxii_content
from shieldwall.taxii.middleware import AccessLog, BodyLimit
from shieldwall.taxii.pages import Built, ReadAhead
from shieldwall.taxii.validate import problem

API_ROOT = "/api/"
DEFAULT_PAGE = 5_000
MAX_PAGE = 10_000
MAX_STATUSES = 10_000


@dataclass
class Settings:
    """What a running server needs besides its store: the node's name and limits."""

    node_member: str = "node"
    default_tlp: TLP = TLP.AMBER
    max_content_length: int = 100 * 1024 * 1024
    max_object_bytes: int = 16 * 1024 * 1024  # one object's JSON, as federation pulls it
    allow_anonymous_discovery: bool = False
    # The URL members reach this server at (e.g. behind a proxy): discovery advertises
    # absolute API root URLs from it, else from the request (cytaxii2 needs a scheme).
    public_url: str | None = None
    rate_limit: float = 200.0  # requests a second per member; 0 turns it off
    max_failed_logins: int = 10
    failed_login_window: float = 60.0
    title: str = "Shieldwall node"
    # A full page of at least this many objects gets its successor built ahead
    # (taxii/pages.py); small filtered pages would only double the work.
    read_ahead_rows: int = 1_000
    # The key `next` cursors are sealed with (store/cursors.py): the node's, from its home
    # (`keys.node_key(home, "cursors")`), so cursors survive a restart and work on every
    # worker. None: a key for this process alone.
    cursor_key: bytes | None = None
    # The owner's blind-matching evaluator (blind.evaluate.Evaluator), when the node serves
    # blind sets: mounted at API_ROOT + "blind/evaluate/" (taxii/blind_routes.py).
    blind_evaluate: Any = None


@dataclass
class _Ctx:
    store: Store
    members: Members
    settings: Settings
    failures: FailedLogins = field(init=False)
    limiter: RateLimit = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.failures = FailedLogins(s.max_failed_logins, s.failed_login_window)
        self.limiter = RateLimit(s.rate_limit)
        self.tokens = TokenCache(self.members)
        self.ahead = ReadAhead(self.store)
        self.cursors = Cursors(s.cursor_key or secrets.token_bytes(32))
        self._collections: tuple[float, list[Collection]] = (0.0, [])
        self._names: tuple[float, frozenset[str]] = (0.0, frozenset())
        # Status resources of this process's POSTs (each is complete when it is answered;
        # kept for clients that poll). Bounded: the oldest are forgotten first.
        self.statuses: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self.status_lock = threading.Lock()

    def remember(self, owner: str, record: dict[str, Any]) -> None:
        with self.status_lock:
            self.statuses[record["id"]] = (owner, record)
            while len(self.statuses) > MAX_STATUSES:
                self.statuses.popitem(last=False)

    def collections(self) -> list[Collection]:
        """Collections and their rules, re-read at most once a second (they change
        rarely; a read per request was a third of a filtered GET's cost)."""
        at, colls = self._collections
        if time.monotonic() - at > CACHE_SECONDS:
            colls = self.members.collections()
            self._collections = (time.monotonic(), colls)
        return colls

    def member_names(self) -> frozenset[str]:
        """Registered member names, re-read at most once a second (every POST needs them
        to refuse claims of another member's identity)."""
        at, names = self._names
        if time.monotonic() - at > CACHE_SECONDS:
            names = self.members.names()
            self._names = (time.monotonic(), names)
        return names


# ---- request parsing ----------------------------------------------------------------------


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def _ts(value: str, what: str) -> int:
    try:
        return parse_ts(value)
    except ValueError:
        raise TaxiiError(400, f"{what}: not a STIX timestamp: {value[:60]!r}") from None


def _versions(value: str | None) -> Any:
    items = _split(value) or ["last"]
    if "all" in items:
        return "all"
    if items in (["last"], ["first"]):
        return items[0]
    return [v if v in ("first", "last") else _ts(v, "match[version]") for v in items]


# The filters are read by hand (`_filters`) and only documented for OpenAPI: FastAPI's
# per-parameter validation was ~0.2 ms of every request, most of a filtered GET's
# server time.
_FILTER_DOCS = {
    "added_after": ("string", "Only versions added after this time."),
    "limit": ("integer", f"Page size (at most {MAX_PAGE})."),
    "next": ("string", "The `next` token of the previous page."),
    "match[id]": ("string", "Ids, comma-separated."),
    "match[type]": ("string", "STIX types, comma-separated."),
    "match[version]": ("string", "first, last (default), all, or timestamps."),
    "match[spec_version]": ("string", "e.g. 2.1"),
}


LIST_FILTERS = ("added_after", "limit", "next", "match[id]", "match[type]", "match[version]",
                "match[spec_version]")
OBJECT_FILTERS = ("added_after", "limit", "next", "match[version]", "match[spec_version]")
VERSIONS_FILTERS = ("added_after", "limit", "next", "match[spec_version]")
DELETE_FILTERS = ("match[version]", "match[spec_version]")


def _documented(*names: str) -> dict[str, Any]:
    """OpenAPI entries for the filters an endpoint reads with `_filters`."""
    params = []
    for name in names:
        kind, text = _FILTER_DOCS[name]
        schema: dict[str, Any] = {"type": kind}
        if name == "limit":
            schema["minimum"] = 1
        params.append({"name": name, "in": "query", "required": False,
                       "description": text, "schema": schema})
    return {"parameters": params}


def _filters(request: Request, *names: str) -> dict[str, str | None]:
    """The named filters of the query string (the last value of a repeated one)."""
    qp = request.query_params
    return {name: qp.get(name) for name in names}


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise TaxiiError(400, f"limit: must be a positive integer, not {value[:20]!r}")
    return limit


CollectionId = Annotated[
    str, Path(description="Collection id (or alias).", examples=["alliance", "sightings"])
]
ObjectId = Annotated[
    str, Path(description="STIX id.",
              examples=["indicator--00000000-0000-4000-8000-000000000000"])
]


def _query(f: dict[str, str | None], *, ids: list[str] | None = None,
           versions: str | None = None) -> StoreQuery:
    """The store query for the filters `f` (from `_filters`); `ids` and `versions`
    when the endpoint fixes them. The cursor (`next`) is opened by `scoped`."""
    added_after = f.get("added_after")
    return StoreQuery(
        ids=ids if ids is not None else _split(f.get("match[id]")),
        types=_split(f.get("match[type]")),
        versions=_versions(versions or f.get("match[version]")),
        spec_versions=_split(f.get("match[spec_version]")),
        added_after_us=_ts(added_after, "added_after") if added_after else None,
        limit=min(_limit(f.get("limit")) or DEFAULT_PAGE, MAX_PAGE),
    )


def _version_of(row: PageRow) -> str:
    return format_ts(row.version_us or row.date_added_us)


def _stated(row: PageRow) -> str:
    """The stored text, or, when it does not state the TLP level this node holds the
    object at (unmarked, held at the default), a copy stating it (`stix.outbound`)."""
    text = held_text(row.json, row.tlp)
    return row.json if text is None else text


def _framed(head: str, items: list[str], tail: str) -> list[str]:
    """head, items separated by commas, tail: as one list, so the body is joined once
    (a 5,000-object page is ~2 MB; each extra concatenation copies all of it)."""
    if not items:
        return [head, tail]
    parts = [","] * (2 * len(items) + 1)
    parts[0], parts[-1] = head, tail
    parts[1::2] = items
    return parts


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _bound(kind: str, member: Member, coll: Collection, q: StoreQuery) -> tuple[Any, ...]:
    """What a `next` cursor is bound to: the endpoint, the member, the collection and every
    filter but the position and the page size. A cursor sealed for one of these opens
    for no other (store/cursors.py)."""
    return (kind, member.name, coll.id, q.ids, q.types, q.versions, q.spec_versions,
            q.added_after_us)


def _page_key(kind: str, member: Member, coll: Collection, q: StoreQuery) -> tuple[Any, ...]:
    """Everything a page depends on besides the database: the endpoint, the caller (its
    name, tier and groups, and the `Access` the store applies), the collection and
    every filter including the cursor. Equal keys are the only way to share a page."""
    return (kind, member, coll.id, coll.alias, coll.scope,
            tuple((f.name, _frozen(getattr(q, f.name))) for f in fields(q)))


# ---- who is calling ------------------------------------------------------------------------


async def accept_taxii(request: Request) -> None:
    if not accepts_taxii(request.headers.get("accept")):
        raise TaxiiError(406, f"this API answers only {TAXII_21}")


async def _caller(request: Request) -> Member | None:
    """Async, so a request whose token was verified moments ago costs no thread hop."""
    ctx: _Ctx = request.app.state.ctx
    client = request.client.host if request.client else "-"
    header = request.headers.get("authorization")
    member = from_cache(ctx.tokens, header, client, ctx.failures)
    if member is None:
        member = await run_in_threadpool(authenticate, ctx.tokens, header, client,
                                         ctx.failures)
    if member is not None:
        request.state.member = member.name
        wait = ctx.limiter.allow(member.name)
        if wait:
            raise TaxiiError(429, "request rate limit reached; slow down",
                             {"Retry-After": str(int(wait) + 1)})
    return member


async def caller(request: Request) -> Member:
    member = await _caller(request)
    if member is None:
        raise TaxiiError(401, "authentication required (HTTP Basic or Bearer token)",
                         CHALLENGE)
    return member


async def optional_caller(request: Request) -> Member | None:
    member = await _caller(request)
    ctx: _Ctx = request.app.state.ctx
    if member is None and not ctx.settings.allow_anonymous_discovery:
        raise TaxiiError(401, "authentication required (HTTP Basic or Bearer token)",
                         CHALLENGE)
    return member


Caller = Annotated[Member, Depends(caller)]
MaybeCaller = Annotated[Member | None, Depends(optional_caller)]


# ---- the application ------------------------------------------------------------------------


def create_app(store: Store, settings: Settings | None = None) -> FastAPI:
    ctx = _Ctx(store, Members(store.engine), settings or Settings())
    app = FastAPI(
        title="Shieldwall TAXII 2.1",
        version="2.1",
        description="The TAXII 2.1 API of a Shieldwall node. Authenticate with HTTP Basic "
        "(member name, token) or `Authorization: Bearer <token>`.",
        # Served below, to members only: the threat model promises that nothing but
        # /healthz (and discovery, if allowed) answers without credentials.
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    deps = [Depends(accept_taxii)]
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_content_length)
    app.add_middleware(AccessLog)
    if ctx.settings.blind_evaluate is not None:
        from shieldwall.taxii.blind_routes import mount_blind

        mount_blind(app, API_ROOT, ctx.settings.blind_evaluate)

    def collection_for(member: Member, cid: str) -> Collection:
        for coll in ctx.collections():
            if cid in (coll.id, coll.alias) and (may_read(member, coll) or may_write(member, coll)):
                return coll
        raise not_found("collection")

    def readable(member: Member, cid: str) -> Collection:
        coll = collection_for(member, cid)
        if not may_read(member, coll):
            raise TaxiiError(403, "this member may not read this collection")
        return coll

    def scoped(q: StoreQuery, coll: Collection, member: Member, kind: str = "",
               cursor: str | None = None) -> StoreQuery:
        """`q` as `member` may read it in `coll`, resumed after `cursor` (a `next` this
        server sealed for this member and this `kind` of query; 400 otherwise)."""
        q.access = access_for(member)
        q.collection = coll.alias if coll.scope == "own" else None
        if cursor:
            try:
                q.after_seq = ctx.cursors.open(cursor, *_bound(kind, member, coll, q))
            except CursorError:
                raise TaxiiError(400, "next: not a token this server issued to this member "
                                      "for this query") from None
        return q

    def page_headers(rows: list[PageRow]) -> dict[str, str]:
        if not rows:
            return {}
        added = [r[3] for r in rows]  # date_added_us; a page may span equal instants
        return {
            "X-TAXII-Date-Added-First": format_ts(min(added)),
            "X-TAXII-Date-Added-Last": format_ts(max(added)),
        }

    def frame(key: str, items: list[str], more: bool, rows: list[PageRow],
              bound: tuple[Any, ...]) -> bytes:
        """The envelope around `items` (JSON texts), joined once and encoded once; its
        `next` sealed for `bound` (`_bound`)."""
        head = '{"more":true,"next":"' + ctx.cursors.seal(rows[-1].seq, *bound) + '"' \
            if more else '{"more":false'
        if not rows:
            return (head + "}").encode()
        return "".join(_framed(head + ',"' + key + '":[', items, "]}")).encode()

    def build(kind: str, q: StoreQuery, bound: tuple[Any, ...]) -> Built:
        """One objects or manifest page, as the bytes to send."""
        rows, more = ctx.store.read_rows(q)
        if kind == "objects":
            items = [_stated(r) for r in rows]  # the stored canonical JSON, as a rule
        else:
            items = [
                orjson.dumps({
                    "id": r.id, "date_added": format_ts(r.date_added_us),
                    "version": _version_of(r), "media_type": STIX_21,
                }).decode()
                for r in rows
            ]
        return Built(frame("objects", items, more, rows, bound), page_headers(rows), more,
                     rows[-1].seq if rows else None, len(rows))

    def paged(kind: str, member: Member, coll: Collection, q: StoreQuery) -> Response:
        """Serve a page (built ahead when the client is walking the collection) and, when
        it was a large full one, start building the next while the client parses this."""
        bound = _bound(kind, member, coll, q)  # the same for every page of the walk
        built = ctx.ahead.build(_page_key(kind, member, coll, q),
                                lambda: build(kind, q, bound))
        if built.more and built.last_seq is not None \
                and built.count >= ctx.settings.read_ahead_rows:
            nq = replace(q, after_seq=built.last_seq)
            ctx.ahead.ahead(_page_key(kind, member, coll, nq), lambda: build(kind, nq, bound))
        return Response(built.body, media_type=TAXII_21, headers=built.headers)

    def taxii_json(body: Any, status: int = 200, headers: dict[str, str] | None = None
                   ) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type=TAXII_21,
                        headers=headers)

    # ---- discovery and API root ------------------------------------------------------------

    @app.get("/taxii2/", dependencies=deps, tags=["discovery"])
    def discovery(member: MaybeCaller, request: Request) -> Response:
        base = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
        return taxii_json({
            "title": f"{ctx.settings.title} ({ctx.settings.node_member})",
            "description": "TAXII 2.1 server of a Shieldwall node.",
            "default": base + API_ROOT,
            "api_roots": [base + API_ROOT],
        })

    @app.get(API_ROOT, dependencies=deps, tags=["api root"])
    def api_root(member: Caller) -> Response:
        return taxii_json({
            "title": "Alliance",
            "description": "Threat intelligence shared within the alliance, per TLP 2.0.",
            "versions": [TAXII_21],
            "max_content_length": ctx.settings.max_content_length,
        })

    @app.get(API_ROOT + "status/{status_id}/", dependencies=deps, tags=["status"])
    def status(member: Caller, status_id: Annotated[str, Path()]) -> Response:
        with ctx.status_lock:
            owner, record = ctx.statuses.get(status_id, ("", {}))
        if owner != member.name:
            raise not_found("status")
        return taxii_json(record)

    # ---- collections ----------------------------------------------------------------------------

    def describe(coll: Collection, member: Member) -> dict[str, Any]:
        return {
            "id": coll.id,
            "alias": coll.alias,
            "title": coll.title,
            "description": coll.description,
            "can_read": may_read(member, coll),
            "can_write": may_write(member, coll),
            "media_types": [STIX_21],
        }

    @app.get(API_ROOT + "collections/", dependencies=deps, tags=["collections"])
    def list_collections(member: Caller) -> Response:
        colls = [
            describe(c, member) for c in ctx.collections()
            if may_read(member, c) or may_write(member, c)
        ]
        return taxii_json({"collections": colls} if colls else {})

    @app.get(API_ROOT + "collections/{cid}/", dependencies=deps, tags=["collections"])
    def get_collection(member: Caller, cid: CollectionId) -> Response:
        return taxii_json(describe(collection_for(member, cid), member))

    # ---- objects --------------------------------------------------------------------------------

    @app.get(API_ROOT + "collections/{cid}/objects/", dependencies=deps, tags=["objects"],
             openapi_extra=_documented(*LIST_FILTERS))
    def get_objects(request: Request, member: Caller, cid: CollectionId) -> Response:
        coll = readable(member, cid)
        f = _filters(request, *LIST_FILTERS)
        q = scoped(_query(f), coll, member, "objects", f["next"])
        return paged("objects", member, coll, q)

    @app.post(API_ROOT + "collections/{cid}/objects/", dependencies=deps, tags=["objects"],
              status_code=202)
    async def add_objects(request: Request, member: Caller, cid: CollectionId) -> Response:
        coll = collection_for(member, cid)
        if not may_write(member, coll):
            raise TaxiiError(403, "this member may not write to this collection")
        if not is_taxii_content(request.headers.get("content-type")):
            raise TaxiiError(415, f"send objects as {TAXII_21}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > ctx.settings.max_content_length:
                raise TaxiiError(413, "the envelope is larger than max_content_length")
        record = await run_in_threadpool(_add, ctx, member, coll, bytes(body))
        return taxii_json(record, status=202)

    @app.get(API_ROOT + "collections/{cid}/objects/{object_id}/", dependencies=deps,
             tags=["objects"], openapi_extra=_documented(*OBJECT_FILTERS))
    def get_object(
        request: Request, member: Caller, cid: CollectionId, object_id: ObjectId
    ) -> Response:
        coll = readable(member, cid)
        f = _filters(request, *OBJECT_FILTERS)
        q = scoped(_query(f, ids=[object_id]), coll, member, "object", f["next"])
        rows, more = ctx.store.read_rows(q)
        if not rows and f["next"] is None:
            raise not_found("object")
        body = frame("objects", [_stated(r) for r in rows], more, rows,
                     _bound("object", member, coll, q))
        return Response(body, media_type=TAXII_21, headers=page_headers(rows))

    @app.delete(API_ROOT + "collections/{cid}/objects/{object_id}/", dependencies=deps,
                tags=["objects"], openapi_extra=_documented(*DELETE_FILTERS))
    def delete_object(
        request: Request, member: Caller, cid: CollectionId, object_id: ObjectId
    ) -> Response:
        coll = collection_for(member, cid)
        f = _filters(request, *DELETE_FILTERS)
        q = _query(f, ids=[object_id], versions=f["match[version]"] or "all")
        q.limit = None
        rows = ctx.store.read_page(scoped(q, coll, member)).rows  # needs source, creator
        if not rows:
            raise not_found("object")
        if not may_write(member, coll):
            raise TaxiiError(403, "this member may not write to this collection")
        mine = [r.seq for r in rows
                if r.source == member.name or r.created_by_ref == member.identity_id]
        if len(mine) != len(rows):
            raise TaxiiError(403, "a member may delete only versions it created or delivered")
        ctx.store.delete_versions(mine)
        ctx.ahead.invalidate()
        return Response(status_code=200, media_type=TAXII_21)

    @app.get(API_ROOT + "collections/{cid}/objects/{object_id}/versions/", dependencies=deps,
             tags=["objects"], openapi_extra=_documented(*VERSIONS_FILTERS))
    def object_versions(
        request: Request, member: Caller, cid: CollectionId, object_id: ObjectId
    ) -> Response:
        coll = readable(member, cid)
        f = _filters(request, *VERSIONS_FILTERS)
        q = scoped(_query(f, ids=[object_id], versions="all"), coll, member, "versions",
                   f["next"])
        rows, more = ctx.store.read_rows(q)
        if not rows and f["next"] is None:
            raise not_found("object")
        items = ['"' + _version_of(r) + '"' for r in rows]
        body = frame("versions", items, more, rows, _bound("versions", member, coll, q))
        return Response(body, media_type=TAXII_21, headers=page_headers(rows))

    @app.get(API_ROOT + "collections/{cid}/manifest/", dependencies=deps, tags=["objects"],
             openapi_extra=_documented(*LIST_FILTERS))
    def manifest(request: Request, member: Caller, cid: CollectionId) -> Response:
        coll = readable(member, cid)
        f = _filters(request, *LIST_FILTERS)
        q = scoped(_query(f), coll, member, "manifest", f["next"])
        return paged("manifest", member, coll, q)

    # ---- operations -----------------------------------------------------------------------------

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(member: Caller) -> Response:
        return Response(orjson.dumps(app.openapi()), media_type="application/json")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(member: Caller) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API")

    @app.get("/redoc", include_in_schema=False)
    def redoc(member: Caller) -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - API")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        ctx.store.kv_get("healthz")
        return {"status": "ok"}

    return app


# ---- adding objects ------------------------------------------------------------------------------


def _add(ctx: _Ctx, member: Member, coll: Collection, body: bytes) -> dict[str, Any]:
    """Validate, apply policy, store; every object ends up a success or a failure."""
    requested = now_us()
    try:
        envelope = bounded_loads(body)
    except TooDeep as exc:
        raise TaxiiError(400, f"the body is {exc}") from None
    except orjson.JSONDecodeError:
        raise TaxiiError(400, "the body is not valid JSON") from None
    objs = envelope.get("objects") if isinstance(envelope, dict) else None
    if not isinstance(objs, list):
        raise TaxiiError(400, "the body must be an envelope: {\"objects\": [...]}")

    failures: list[dict[str, str]] = []
    candidates: list[dict[str, Any]] = []
    cap = ctx.settings.max_object_bytes
    sized, too_large = oversized(objs, len(body), cap)
    for obj, size in too_large:  # refused before validation spends anything on them
        failures.append(_entry(obj, f"larger than {cap:,} bytes ({size:,}); "
                                    "server.max_object_bytes"))
    for obj in sized:
        why = problem(obj)
        if why:
            failures.append(_entry(obj, why))
        else:
            candidates.append(obj)

    # What the member means by its own marking ids, kept even if a definition is refused.
    record_tlp_definitions(ctx.store, member.name, declared_tlp(objs))
    accepted = _apply_policy(ctx, member, candidates, failures)
    successes: list[dict[str, str]] = []
    if accepted:
        try:
            result = ctx.store.put_many(
                accepted, Provenance(member.name, "taxii", coll.alias),
                default_tlp=ctx.settings.default_tlp,
                tlp_overrides=_custom_markings(ctx, member, objs, accepted) or None,
                details=True,
            )
        finally:
            ctx.ahead.invalidate()
        for d in result.details:
            if d.outcome == "rejected":
                failures.append({"id": d.id, "version": d.version, "message": d.reason})
            else:
                successes.append({"id": d.id, "version": d.version,
                                  "message": _OUTCOMES.get(d.outcome, d.outcome)})
    record = {
        "id": str(uuid.uuid4()),
        "status": "complete",
        "request_timestamp": format_ts(requested),
        "total_count": len(objs),
        "success_count": len(successes),
        "successes": successes,
        "failure_count": len(failures),
        "failures": failures,
        "pending_count": 0,
        "pendings": [],
    }
    ctx.remember(member.name, record)
    return record


def _custom_markings(
    ctx: _Ctx, member: Member, sent: list[Any], objs: list[dict[str, Any]]
) -> dict[str, TLP]:
    """TLP levels of the custom marking definitions (MISP, OpenCTI mint their own ids)
    that `objs` use, as their deliverer defined them: in the envelope `sent` (a definition
    refused as an object still says what its sender means by the id), or stored from
    this member or by the node itself. Another member's definition of the same id never
    counts (definition squatting, docs/taxii.md); where several count, the stricter wins."""
    refs = {r for o in objs for r in marking_refs(o) if r not in KNOWN_TLP_REFS}
    if not refs:
        return {}
    in_envelope = {mid: v for mid, v in declared_tlp(sent).items() if mid in refs}
    held = stored_tlp_markings(ctx.store, {member.name, ctx.settings.node_member}, refs)
    return stricter(in_envelope, held)


_OUTCOMES = {"new": "new", "new_version": "new version", "history": "history",
             "duplicate": "duplicate", "conflict": "conflict"}


def _entry(obj: Any, message: str) -> dict[str, str]:
    entry = {"message": message}
    if isinstance(obj, dict):
        if isinstance(obj.get("id"), str):
            entry["id"] = obj["id"][:300]
        version = obj.get("modified") or obj.get("created")
        if isinstance(version, str):
            entry["version"] = version[:40]
    entry.setdefault("id", "")
    return entry


def _apply_policy(
    ctx: _Ctx, member: Member, objs: list[dict[str, Any]], failures: list[dict[str, str]]
) -> list[dict[str, Any]]:
    if not objs:
        return []
    identities = frozenset(
        member_identity_id(n) for n in ctx.member_names() | {ctx.settings.node_member}
    )
    # Every stored version of these ids, whoever may read them: who owns each object
    # (its first version's creator and deliverer) decides who may version it.
    existing = held_objects(ctx.store.rows_by_ids(list({o["id"] for o in objs}), HELD_COLUMNS))
    sighted_ids = list({
        o["sighting_of_ref"] for o in objs
        if o["type"] == "sighting" and isinstance(o.get("sighting_of_ref"), str)
    })
    sighted: dict[str, Existing] = {}
    if sighted_ids:
        # Only indicators the writer can see count: an invisible one does not exist for it.
        q = StoreQuery(ids=sighted_ids, versions="last", access=access_for(member))
        sighted = {r.id: Existing(r.tlp, r.created_by_ref, r.source)
                   for r in ctx.store.read_page(q).rows}
    accepted = []
    for obj in objs:
        why = write_refusal(
            member, obj, member_identities=identities, existing=existing.get(obj["id"]),
            sighted=sighted.get(obj.get("sighting_of_ref", "")) if obj["type"] == "sighting"
            else None,
            default_tlp=ctx.settings.default_tlp,
        )
        if why:
            failures.append(_entry(obj, why))
        else:
            accepted.append(obj)
    return accepted


