"""A thin TAXII 2.1 client (httpx) for what federation needs: collections, a page of
objects, adding objects and following their status.

`taxii2-client` is the reference client the tests use; this one exists because federation
needs the raw page headers (`X-TAXII-Date-Added-Last`) for its durable cursor, keep-alive
across thousands of pages, and orjson parsing (a 10,000-object page parses in ~40 ms).

Every request is bounded (`Limits`), whatever the server does: a deadline for the whole
request, from connecting to the last byte (httpx's timeouts are per read, so a server
trickling a byte every few seconds would hold a request for ever), a cap on the bytes of
the answer (the body is streamed and dropped at the cap), and JSON no deeper than
`stix.bounded_json.MAX_DEPTH`. Each ends the request with a `TaxiiClientError` saying so.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import orjson

from shieldwall.errors import ShieldwallError
from shieldwall.stix.bounded_json import TooDeep
from shieldwall.stix.bounded_json import loads as bounded_loads
from shieldwall.taxii.media import TAXII_21

API = "/api/"
_TLS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every peer's client: building one
    (loading the CA bundle) costs ~20 ms of CPU, and a node of a 32-member alliance opens
    31 clients; 32 such nodes starting on two cores spent ~20 s of CPU on it."""
    with _TLS_LOCK:
        if not _TLS:
            _TLS.append(httpx.create_ssl_context())
        return _TLS[0]


@dataclass(frozen=True)
class Credentials:
    """How this node proves itself to one peer: `kind` is "bearer" (`secret` the token),
    "basic" (`user` and `secret` the password), "api-key" (`secret` sent in the `header`)
    or "none"; `cert`/`key` a TLS client certificate, `ca` the CA file the peer's
    certificate is checked against (else the system's). The secret never shows in repr."""

    kind: str = "bearer"
    secret: str = field(default="", repr=False)
    user: str = ""
    header: str = ""
    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    def http_auth(self) -> tuple[dict[str, str], httpx.Auth | None]:
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {self.secret}"}, None
        if self.kind == "basic":
            return {}, httpx.BasicAuth(self.user, self.secret)
        if self.kind == "api-key":
            return {self.header: self.secret}, None
        return {}, None

    def tls(self) -> ssl.SSLContext:
        """The shared context, or one of this peer's own (client certificate, CA)."""
        if not (self.cert or self.ca):
            return _tls()
        ctx = ssl.create_default_context(cafile=self.ca) if self.ca else \
            httpx.create_ssl_context()
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


class TaxiiClientError(ShieldwallError):
    """A TAXII request failed; `status` is the HTTP status (0 when the peer is unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may cost: `deadline` seconds from connecting to the last byte
    of the answer, and `max_bytes` of answer (federation passes the node's
    `federation.request_deadline` and `server.max_content_length`)."""

    deadline: float = 120.0
    max_bytes: int = 100 * 1024 * 1024


# The deadline of the request this thread is making (a monotonic time), read by every
# socket operation of its connection: see `_DeadlineStream`.
_DEADLINE = threading.local()


def _left(timeout: float | None) -> float | None:
    """`timeout` for one socket operation, cut to what is left of the request's deadline."""
    at = getattr(_DEADLINE, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits no longer than the deadline of the
    request using it: httpcore reads its timeout once per phase, then waits that long
    for each chunk, so only the socket level sees every byte a trickler sends."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None
                    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(host, port, _left(timeout),
                                                         local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(path, _left(timeout),
                                                                 socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _transport(tls: ssl.SSLContext) -> httpx.HTTPTransport:
    """httpx's transport over a pool whose connections keep the deadline (httpx takes
    no network backend, so its pool is replaced by the same pool with ours)."""
    transport = httpx.HTTPTransport(verify=tls)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=tls, max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=5.0, network_backend=_DeadlineBackend())
    return transport


@dataclass
class ObjectsPage:
    objects: list[dict[str, Any]]
    more: bool
    next: str | None
    added_last: str | None
    size: int = 0  # bytes of the answer


class TaxiiClient:
    """One peer's API root. `base_url` is the server's root (`http://host:port`, or its
    discovery URL `.../taxii2/`: the API root is then the discovery document's `default`,
    else its first `api_roots`), or an API root's own URL (`http://host/trustgroup1/`).
    A server without a discovery document is asked at `/api/` (Shieldwall's root).
    `credentials` (or a bare bearer token) say how this node authenticates."""

    def __init__(self, base_url: str, credentials: Credentials | str, *,
                 timeout: float = 30.0, limits: Limits | None = None,
                 api: str | None = None) -> None:
        if isinstance(credentials, str):
            credentials = Credentials("bearer", credentials)
        self.credentials = credentials
        self.limits = limits or Limits()
        given = base_url.rstrip("/")
        parts = urlsplit(given)
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.rstrip("/")
        # The API root: known (a worker is handed its parent's), given, or discovered.
        self.api = api or (f"{self.base_url}{path}/" if path and path != "/taxii2" else None)
        headers, auth = credentials.http_auth()
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={**headers, "Accept": TAXII_21},
            auth=auth,
            timeout=timeout,
            transport=_transport(credentials.tls()),
        )

    def api_root(self) -> str:
        """The API root's URL, from the server's discovery document the first time. A
        root on another origin than the peer's is refused: the peer's credentials go to
        the peer only."""
        if self.api is None:
            self.api = self._discover()
        return self.api

    def _discover(self) -> str:
        try:
            _, doc, _ = self._request("GET", self.base_url + "/taxii2/")
        except TaxiiClientError as exc:
            if exc.status in (404, 405, 406):
                return self.base_url + API
            raise
        roots = doc.get("api_roots") if isinstance(doc, dict) else None
        root = doc.get("default") if isinstance(doc, dict) else None
        if not isinstance(root, str) or not root:
            root = roots[0] if isinstance(roots, list) and roots and \
                isinstance(roots[0], str) else None
        if root is None:
            return self.base_url + API
        url = urljoin(self.base_url + "/taxii2/", root)
        if not url.endswith("/"):
            url += "/"
        there = urlsplit(url)
        if f"{there.scheme}://{there.netloc}" != self.base_url:
            raise TaxiiClientError(
                f"{self.base_url}: its discovery document names an API root on another "
                f"server ({url[:100]}); give that root's URL as the peer's URL if it is meant")
        return url

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kw: Any
                 ) -> tuple[httpx.Response, Any, int]:
        """The answer's headers, its JSON body parsed, and its size, within `self.limits`."""
        url = path if "://" in path else self.api_root() + path
        deadline = time.monotonic() + self.limits.deadline
        _DEADLINE.at = deadline
        try:
            with self.http.stream(method, url, **kw) as resp:
                raw = self._read(resp)
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline - 0.05:
                raise TaxiiClientError(
                    f"{self.base_url}: no complete answer within {self.limits.deadline:g} s "
                    "(the deadline of one request)") from None
            raise TaxiiClientError(
                f"{self.base_url}: unreachable ({type(exc).__name__}: {exc})") from None
        except httpx.HTTPError as exc:
            raise TaxiiClientError(
                f"{self.base_url}: unreachable ({type(exc).__name__}: {exc})") from None
        finally:
            _DEADLINE.at = None
        if resp.status_code >= 400:
            detail = ""
            try:
                body = bounded_loads(raw)
                detail = body.get("title") or body.get("description") or ""
            except (orjson.JSONDecodeError, AttributeError):
                detail = bytes(raw[:200]).decode(errors="replace")
            raise TaxiiClientError(
                f"{self.base_url}: HTTP {resp.status_code} {detail}".strip(), resp.status_code)
        try:
            return resp, bounded_loads(raw), len(raw)
        except TooDeep as exc:
            raise TaxiiClientError(
                f"{self.base_url}: answer nested deeper than {exc.limit} levels") from None
        except orjson.JSONDecodeError as exc:
            raise TaxiiClientError(f"{self.base_url}: answer is not JSON ({exc})") from None

    def _read(self, resp: httpx.Response) -> bytearray:
        """The body, streamed and refused past `limits.max_bytes` (or at once when the
        declared length is larger): a peer cannot make this node hold more."""
        cap = self.limits.max_bytes
        declared = resp.headers.get("content-length", "")
        too_large = TaxiiClientError(
            f"{self.base_url}: answer larger than {cap:,} bytes (max_content_length)")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise too_large
        return body

    def collections(self) -> list[dict[str, Any]]:
        _, body, _ = self._request("GET", "collections/")
        found = body.get("collections", []) if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise TaxiiClientError(f"{self.base_url}: answer is not a list of collections")
        return found

    def get_objects(
        self, collection: str, *, added_after: str | None = None, next: str | None = None,
        limit: int | None = None,
    ) -> ObjectsPage:
        params: dict[str, Any] = {}
        if added_after:
            params["added_after"] = added_after
        if next:
            params["next"] = next
        if limit:
            params["limit"] = limit
        resp, body, size = self._request("GET", f"collections/{collection}/objects/",
                                         params=params)
        objects = body.get("objects", []) if isinstance(body, dict) else None
        if not isinstance(objects, list):
            raise TaxiiClientError(f"{self.base_url}: answer is not a TAXII envelope")
        return ObjectsPage(
            objects=objects,
            more=bool(body.get("more")),
            next=body.get("next"),
            added_last=resp.headers.get("X-TAXII-Date-Added-Last"),
            size=size,
        )

    def add_objects(self, collection: str, objects: list[dict[str, Any]],
                    wait: float = 60.0) -> dict[str, Any]:
        """POST an envelope, then follow the status resource until it is complete."""
        _, status, _ = self._request(
            "POST", f"collections/{collection}/objects/",
            content=orjson.dumps({"objects": objects}),
            headers={"Content-Type": TAXII_21},
        )
        if not isinstance(status, dict):
            raise TaxiiClientError(f"{self.base_url}: answer is not a TAXII status")
        deadline = time.monotonic() + wait
        delay = 0.05
        while status.get("status") != "complete":
            if time.monotonic() > deadline:
                raise TaxiiClientError(f"{self.base_url}: status {status.get('id')} still "
                                       f"{status.get('status')} after {wait:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            status = self.status(str(status["id"]))
        return status

    def status(self, status_id: str) -> dict[str, Any]:
        _, status, _ = self._request("GET", f"status/{status_id}/")
        if not isinstance(status, dict):
            raise TaxiiClientError(f"{self.base_url}: answer is not a TAXII status")
        return status
