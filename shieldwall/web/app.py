"""The dashboard (FastAPI, Jinja2): sign-in, overview, intelligence, sightings, incidents,
campaigns, their JSON twins and a live stream of sightings (server-sent events).

Mounted beside TAXII by `shieldwall serve` (`mount()`). Every request resolves its user's
member through `policy`, and every read passes the member's store `Access`, built by the
same function TAXII uses (passed in as `access_for`), so the dashboard shows a member
exactly what TAXII would.
"""


import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, Signer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse

from shieldwall.policy import Member, Members, may_read, member_identity_id
from shieldwall.policy.failed_logins import FailedLogins
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts
from shieldwall.store import Access, Query, Store
from shieldwall.store.cursors import CursorError, Cursors
from shieldwall.web import cases, picture
from shieldwall.web.graph import campaign_graph
from shieldwall.web.picture import Filters, Names
from shieldwall.web.users import ROLES, Session, Users

HERE = Path(__file__).parent
PREFIX = "/dashboard"
SESSION_COOKIE = "sw_session"
LOGIN_COOKIE = "sw_login"
_SECRET_KEY = "web:session-signing-key"
LIVE_POLL_SECONDS = 1.0
LIVE_MAX_SECONDS = 25.0  # then the browser reconnects (EventSource), resuming from its last id;
# short, so a stopping server never waits long for open streams

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")

AccessFor = Callable[[Member], Access]
NOTHING = Access(open_levels=frozenset())  # the store reads this as "no row"


@dataclass
class Viewer:
    """The signed-in user, its member and the member's `Access`."""

    session: Session
    member: Member
    access: Access

    @property
    def user(self) -> Any:
        return self.session.user


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def _signing_key(store: Store) -> str:
    key = store.kv_get(_SECRET_KEY)
    if key is None:
        store.kv_set(_SECRET_KEY, secrets.token_hex(32))
        key = store.kv_get(_SECRET_KEY)
    assert key is not None
    return key


def tlp_class(level: TLP) -> str:
    return "tlp-" + level.name.lower().replace("_", "-")


def create_dashboard(store: Store, access_for: AccessFor, *, secure: bool = False,
                     node_member: str = "node", cursor_key: bytes | None = None) -> FastAPI:
    """`cursor_key`: the node's key for the live stream's cursors (store/cursors.py), from
    its home, so a browser resumes across a restart; None: a key for this process."""
    app = FastAPI(title="Shieldwall dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None)
    users = Users(store.engine)
    members = Members(store.engine)
    signer = Signer(_signing_key(store), salt="shieldwall-dashboard-session")
    failures = FailedLogins()
    cursors = Cursors(cursor_key or secrets.token_bytes(32))
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.globals.update(prefix=PREFIX, tlp_class=tlp_class, node_member=node_member,
                       roles=ROLES)
    env.filters["ts"] = _short_ts
    env.filters["urlid"] = lambda s: quote(str(s), safe="")
    env.filters["json"] = lambda o: orjson.dumps(o, option=orjson.OPT_INDENT_2).decode()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def names() -> Names:
        return Names({member_identity_id(n): n for n in members.names()})

    def set_cookie(resp: Response, key: str, value: str, max_age: int | None = None) -> None:
        resp.set_cookie(key, value, max_age=max_age, path=PREFIX, httponly=True,
                        samesite="strict", secure=secure)

    def reach(member: Member) -> Access:
        """The member's `Access`, when it may read a collection that covers every object
        (TAXII scope `all`); else nothing: the dashboard shows the node-wide picture and
        never more than TAXII would (per-collection views are not built yet)."""
        if any(c.scope == "all" and may_read(member, c) for c in members.collections()):
            return access_for(member)
        return NOTHING

    def viewer_of(request: Request) -> Viewer | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            sid = signer.unsign(raw).decode()
        except BadSignature:
            return None
        session = users.session(sid)
        if session is None:
            return None
        member = members.get(session.user.member)  # None once the member is revoked
        if member is None:
            return None
        return Viewer(session, member, reach(member))

    def page_viewer(request: Request) -> Viewer:
        v = viewer_of(request)
        if v is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _Redirect(f"{PREFIX}/login?next={quote(target, safe='')}")
        return v

    def api_viewer(request: Request) -> Viewer:
        v = viewer_of(request)
        if v is None:
            raise HTTPException(401, "sign in first")
        return v

    PageViewer = Annotated[Viewer, Depends(page_viewer)]
    ApiViewer = Annotated[Viewer, Depends(api_viewer)]

    @app.exception_handler(_Redirect)
    async def _redirect(_request: Request, exc: _Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(f"{PREFIX}/api/") or "/api/" in request.url.path:
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        v = await run_in_threadpool(viewer_of, request)
        return templates.TemplateResponse(request, "error.html", {
            "viewer": v, "status": exc.status_code, "detail": exc.detail,
        }, status_code=exc.status_code)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        resp: Response = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith(f"{PREFIX}/static"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def render(request: Request, name: str, viewer: Viewer | None, **ctx: Any) -> Response:
        return templates.TemplateResponse(request, name, {"viewer": viewer, **ctx})

    def check_csrf(viewer: Viewer, token: str) -> None:
        if not secrets.compare_digest(token.encode(), viewer.session.csrf.encode()):
            raise HTTPException(403, "the form expired or did not come from this dashboard; "
                                     "reload the page and try again")

    # ---- sign-in -----------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        resp = render(request, "login.html", None, csrf=token, next=_safe_next(next),
                      error=None)
        set_cookie(resp, LOGIN_COOKIE, signer.sign(token).decode(), max_age=3600)
        return resp

    @app.post("/login", response_class=HTMLResponse)
    def login(request: Request, username: Annotated[str, Form()] = "",
              password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
              next: Annotated[str, Form()] = "") -> Response:
        try:
            expected = signer.unsign(request.cookies.get(LOGIN_COOKIE, "")).decode()
        except BadSignature:
            expected = ""
        if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
            raise HTTPException(403, "the sign-in form expired; reload it and try again")
        client = request.client.host if request.client else "-"
        error = None
        user = None
        if failures.blocked(client):
            error = "Too many failed sign-ins from this address; wait a minute."
        else:
            user = users.verify(username, password)
            if user is None or members.get(user.member) is None:
                failures.record(client)
                error = "Unknown user name or wrong password."
        if error or user is None:
            token = secrets.token_urlsafe(32)
            resp = render(request, "login.html", None, csrf=token, next=_safe_next(next),
                          error=error, username=username)
            resp.status_code = 401
            set_cookie(resp, LOGIN_COOKIE, signer.sign(token).decode(), max_age=3600)
            return resp
        sid, _ = users.start_session(user)
        resp = RedirectResponse(_safe_next(next) or f"{PREFIX}/", status_code=303)
        set_cookie(resp, SESSION_COOKIE, signer.sign(sid).decode())
        resp.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return resp

    @app.post("/logout")
    def logout(request: Request, viewer: PageViewer,
               csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(viewer, csrf)
        raw = request.cookies.get(SESSION_COOKIE, "")
        users.end_session(signer.unsign(raw).decode())
        resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return resp

    # ---- overview ----------------------------------------------------------------------

    def live_cursor(viewer: Viewer) -> int:
        rows = picture.newest(store, Query(types=["sighting"], access=viewer.access), 1)
        return rows[0].seq if rows else 0

    # The live stream's position is the store's sequence, which numbers every object,
    # hidden ones too: sealed for the viewer's member, it shows neither how many objects
    # the member may not see were stored in between nor how fast (store/cursors.py).
    def seal(viewer: Viewer, seq: int) -> str:
        return cursors.seal(seq, "dashboard-live", viewer.member.name)

    def unseal(viewer: Viewer, token: str) -> int:
        try:
            return cursors.open(token, "dashboard-live", viewer.member.name)
        except CursorError:
            raise HTTPException(400, "after: not a position this dashboard gave your "
                                     "member; reload the page") from None

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request, viewer: PageViewer) -> Response:
        data = picture.overview(store, viewer.access, names(), viewer.member.name)
        return render(request, "overview.html", viewer, data=data,
                      live_after=seal(viewer, live_cursor(viewer)))

    @app.get("/api/overview")
    def overview_json(viewer: ApiViewer) -> Response:
        data = picture.overview(store, viewer.access, names(), viewer.member.name)
        return _json({
            "members": [{**{k: v for k, v in m.items() if k != "recent"},
                         "recent": [s.as_json() for s in m["recent"]]}
                        for m in data["members"]],
            "recent_sightings": [s.as_json() for s in data["recent"]],
            "campaigns": [{**c, "tlp": c["tlp"].label} for c in data["campaigns"]],
            "intel": [_row_json(r) for r in data["intel"]],
            "timeline": data["timeline"],
            "total_sightings": data["total_sightings"],
            "total_indicators": data["total_indicators"],
        })

    @app.get("/api/timeline")
    def timeline_json(viewer: ApiViewer) -> Response:
        views = picture.sightings(store, viewer.access, names())
        return _json(picture.timeline(views))

    @app.get("/api/live")
    async def live(request: Request, viewer: ApiViewer, after: str | None = None) -> Response:
        token = request.headers.get("last-event-id") or after
        cursor = unseal(viewer, token) if token else \
            await run_in_threadpool(live_cursor, viewer)

        async def events() -> AsyncIterator[bytes]:
            nonlocal cursor
            yield b"retry: 2000\n\n"
            waited = 0.0
            while waited < LIVE_MAX_SECONDS:
                if await request.is_disconnected():
                    return
                still = await run_in_threadpool(viewer_of, request)
                if still is None:  # signed out, user removed, member revoked
                    yield b"event: signed-out\ndata: {}\n\n"
                    return
                new = await run_in_threadpool(
                    picture.sightings, store, still.access, names(), after_seq=cursor)
                if new:
                    await run_in_threadpool(picture.name_indicators, store, still.access, new)
                for s in sorted(new, key=lambda s: s.seq):
                    cursor = max(cursor, s.seq)
                    payload = orjson.dumps({**s.as_json(), "tlp_class": tlp_class(s.tlp),
                                            "url": f"{PREFIX}/objects/{s.id}",
                                            "indicator_url": f"{PREFIX}/objects/"
                                                             f"{s.indicator_id}"})
                    yield b"id: %s\nevent: sighting\ndata: %s\n\n" % (
                        seal(viewer, s.seq).encode(), payload)
                if not new:
                    yield b": keep-alive\n\n"
                await asyncio.sleep(LIVE_POLL_SECONDS)
                waited += LIVE_POLL_SECONDS

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    # ---- intelligence ------------------------------------------------------------------

    def filters(value: str, type: str, tlp: str, source: str, validity: str) -> Filters:
        if tlp:
            try:
                TLP.parse(tlp)
            except ValueError:
                raise HTTPException(400, f"unknown TLP level {tlp!r}") from None
        if validity not in picture.VALIDITY:
            raise HTTPException(400, f"validity: one of {', '.join(picture.VALIDITY)}")
        return Filters(value.strip(), type.strip(), tlp, source.strip(), validity)

    @app.get("/intel", response_class=HTMLResponse)
    def intel_page(request: Request, viewer: PageViewer, q: str = "", type: str = "",
                   tlp: str = "", source: str = "", validity: str = "any") -> Response:
        f = filters(q, type, tlp, source, validity)
        rows, more = picture.search_indicators(store, viewer.access, names(), f)
        return render(request, "intel.html", viewer, rows=rows, more=more, f=f,
                      levels=list(TLP), validities=picture.VALIDITY)

    @app.get("/api/indicators")
    def intel_json(viewer: ApiViewer, q: str = "", type: str = "", tlp: str = "",
                   source: str = "", validity: str = "any") -> Response:
        f = filters(q, type, tlp, source, validity)
        rows, more = picture.search_indicators(store, viewer.access, names(), f)
        return _json({"count": len(rows), "more": more,
                      "indicators": [{**r, "tlp": r["tlp"].label} for r in rows]})

    # ---- objects -----------------------------------------------------------------------

    def detail(viewer: Viewer, stix_id: str) -> dict[str, Any]:
        row = store.get(stix_id, viewer.access)
        if row is None:  # absent or hidden: alike
            raise HTTPException(404, "no such object, or not shared with your member")
        obj = picture.read(row)
        n = names()
        ctx: dict[str, Any] = {"row": row, "obj": obj, "stored": row.obj(),
                               "versions": picture.provenance(
                                   store.versions(stix_id, viewer.access)),
                               "creator": n.of(row.created_by_ref) if row.created_by_ref
                               else None}
        if row.type == "indicator":
            ctx["sightings"] = picture.sightings_of(store, viewer.access, n, stix_id)
            ctx["types"] = picture.pattern_types(obj.get("pattern", ""))
        if row.type == "sighting":
            s = picture.sighting_view(row, n)
            picture.name_indicators(store, viewer.access, [s])
            ctx["sighting"] = s
        if row.type in ("campaign", "incident", "intrusion-set", "malware", "indicator",
                        "threat-actor", "attack-pattern", "report"):
            ctx["related"] = picture.related(store, viewer.access, stix_id)
        if row.type == "incident":
            ctx["scores"] = picture.incident_scores(obj)
            ctx["core"] = picture.incident_core(obj)
        if row.type == "campaign":
            related = ctx["related"]
            ctx["incident_scores"] = [
                (r["other"], picture.incident_scores(picture.read(r["other"])))
                for r in related if r["other"] is not None and r["other"].type == "incident"]
            ctx["rankings"] = picture.attribution_rankings(store, viewer.access, stix_id)
            ctx["consultation"] = picture.consultation(store, node_member, viewer.member.name,
                                                       viewer.access, stix_id)
            ctx["attributions"] = sorted(
                [r for r in related if r["rel"].get("relationship_type") == "attributed-to"
                 and r["outgoing"]],
                key=lambda r: -int(r["rel"].get("confidence", 0) or 0))
            ctx["graph"] = campaign_graph(store, viewer.access, n, row, related, PREFIX)
        return ctx

    @app.get("/objects/{stix_id}", response_class=HTMLResponse)
    def object_page(request: Request, viewer: PageViewer, stix_id: str) -> Response:
        return render(request, "object.html", viewer, **detail(viewer, stix_id))

    @app.get("/api/objects/{stix_id}")
    def object_json(viewer: ApiViewer, stix_id: str) -> Response:
        ctx = detail(viewer, stix_id)
        out: dict[str, Any] = {"object": ctx["stored"], "tlp": ctx["row"].tlp.label,
                               "versions": [{**v, "tlp": v["tlp"].label}
                                            for v in ctx["versions"]]}
        if "sightings" in ctx:
            out["sightings"] = [s.as_json() for s in ctx["sightings"]]
        if "sighting" in ctx:
            out["explanation"] = ctx["sighting"].explanation
        return _json(out)

    # ---- lists -------------------------------------------------------------------------

    @app.get("/sightings", response_class=HTMLResponse)
    def sightings_page(request: Request, viewer: PageViewer, member: str = "") -> Response:
        views = picture.sightings(store, viewer.access, names())
        if member:
            views = [s for s in views if s.member == member]
        shown = views[:500]
        picture.name_indicators(store, viewer.access, shown)
        return render(request, "sightings.html", viewer, sightings=shown, total=len(views),
                      member=member, live_after=seal(viewer, live_cursor(viewer)))

    @app.get("/api/sightings")
    def sightings_json(viewer: ApiViewer) -> Response:
        views = picture.sightings(store, viewer.access, names())
        picture.name_indicators(store, viewer.access, views[:500])
        return _json({"count": len(views), "sightings": [s.as_json() for s in views[:500]]})

    def listing(viewer: Viewer, stix_type: str) -> list[Any]:
        return picture.newest(store, Query(types=[stix_type], access=viewer.access), 500)

    @app.get("/incidents", response_class=HTMLResponse)
    def incidents_page(request: Request, viewer: PageViewer) -> Response:
        rows = listing(viewer, "incident")
        return render(request, "listing.html", viewer, title="Incidents", rows=rows,
                      scores={r.id: picture.incident_scores(picture.read(r)) for r in rows})

    @app.get("/campaigns", response_class=HTMLResponse)
    def campaigns_page(request: Request, viewer: PageViewer) -> Response:
        rows = listing(viewer, "campaign")
        return render(request, "listing.html", viewer, title="Campaigns", rows=rows,
                      scores={})

    # ---- hygiene (the Pledge; before the /api/{stix_type} catch-all) ---------------------

    @app.get("/hygiene", response_class=HTMLResponse)
    def hygiene_page(request: Request, viewer: PageViewer) -> Response:
        members = picture.hygiene(store, viewer.access)
        return render(request, "hygiene.html", viewer, members=members)

    @app.get("/api/hygiene")
    def hygiene_json(viewer: ApiViewer) -> Response:
        members = picture.hygiene(store, viewer.access)
        return _json({"members": [{**m, "tlp": m["tlp"].label} for m in members]})

    # ---- rapid reaction: assistance requests and cases (shieldwall/web/cases.py) ---------

    cases.add_routes(app, store, page_viewer, render, cursors)

    @app.get("/api/{stix_type}")
    def listing_json(viewer: ApiViewer, stix_type: str) -> Response:
        if stix_type not in ("incidents", "campaigns"):
            raise HTTPException(404, "no such endpoint")
        rows = listing(viewer, stix_type[:-1])
        return _json({"count": len(rows), "objects": [_row_json(r) for r in rows]})

    return app


def _safe_next(url: str) -> str:
    """Only paths inside the dashboard: no open redirect to another site."""
    if url.startswith(f"{PREFIX}/") and not url.startswith("//") and "\\" not in url:
        return url
    return ""


def _short_ts(value: Any) -> str:
    if isinstance(value, int):
        value = format_ts(value)
    text = str(value or "")
    return text[:16].replace("T", " ") + (" UTC" if len(text) >= 16 else "")


def _row_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "type": row.type, "name": row.name, "tlp": row.tlp.label,
            "source": row.source, "added": format_ts(row.date_added_us)}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def mount(app: FastAPI, store: Store, access_for: AccessFor, *, secure: bool = False,
          node_member: str = "node", cursor_key: bytes | None = None) -> None:
    """Serve the dashboard at /dashboard/ of `app` (the node's TAXII app)."""
    app.mount(PREFIX, create_dashboard(store, access_for, secure=secure,
                                       node_member=node_member, cursor_key=cursor_key))
