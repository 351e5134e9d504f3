"""Prometheus metrics of a node, read from its store when scraped.

What a scrape sees: objects by type and TLP, stored versions by channel (imports,
TAXII, federation, detection...), sightings by this member and by others, hunt
events and seconds (rate() of one over the other is events/s), per peer the seconds
since the last successful sync, whether the last attempt failed, what the peer refused
of ours and what this node refused of the peer's (refused arrivals), failed sign-ins
(TAXII and dashboard, this process), and the outbox's depth and oldest alert per output.

Who may scrape (`mount`): a client on loopback (unless `metrics_loopback = false`) or
one that presents the metrics token (`metrics_token_file`) as a bearer token; a member's
TAXII token never opens it. The counts cover every object the node holds, RED and
AMBER+STRICT for any audience included, so they are the node operator's to read, like
the database itself; no label ever carries object content (types outside STIX's own
and the node's are counted as "other"; channels likewise), only names from the config.

A scrape reads the store at most once every `cache_seconds`: the group-by over
the objects is ~1 s on a million-object SQLite store.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.requests import Request  # at module level: FastAPI resolves annotations here
from starlette.responses import Response

from shieldwall.observe.counters import hunt_totals
from shieldwall.outputs.outbox import alert_outbox
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
from shieldwall.store.schema import objects

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

STIX_TYPES = frozenset({
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
    "indicator", "infrastructure", "intrusion-set", "location", "malware",
    "malware-analysis", "note", "observed-data", "opinion", "report", "threat-actor", "tool",
    "vulnerability", "relationship", "sighting", "marking-definition", "language-content",
    "extension-definition", "artifact", "autonomous-system", "directory", "domain-name",
    "email-addr", "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
    "network-traffic", "process", "software", "url", "user-account", "windows-registry-key",
    "x509-certificate",
})
CHANNELS = frozenset({"import", "taxii", "federation", "local", "detect", "hunt", "blind",
                      "pledge", "key-card"})


def _type_label(t: str) -> str:
    return t if t in STIX_TYPES or t.startswith("x-shieldwall-") else "other"


def node_metrics(store: Store, home: Path, member_identity: str) -> Metrics:
    """The metrics of the node at `home`: its peers re-read from its config at each
    refresh (peers added while it runs are picked up, as federation picks them up)."""
    from shieldwall.config import load_config
    from shieldwall.federation.peers import load_state

    def peers() -> list[tuple[str, Any]]:
        return [(p.name, load_state(store, p.name)) for p in load_config(home).peers]

    return Metrics(StoreCollector(store, member_identity=member_identity, peers=peers))


PeerStates = Callable[[], Sequence[tuple[str, Any]]]


class StoreCollector(Collector):
    """Everything read from the store, cached for `cache_seconds`."""

    def __init__(self, store: Store, *, member_identity: str, peers: PeerStates,
                 cache_seconds: float = 10.0) -> None:
        self.store = store
        self.identity = member_identity
        self.peers = peers
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, list[Metric]] = (0.0, [])
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            at, metrics = self._cached
            if not metrics or time.monotonic() - at > self.cache_seconds:
                metrics = self._read()
                self._cached = (time.monotonic(), metrics)
        yield from metrics

    def _read(self) -> list[Metric]:

        c = objects.c
        by_type = GaugeMetricFamily("shieldwall_objects", "Objects held (latest versions), "
                                    "by STIX type and the TLP the node holds them at",
                                    labels=["type", "tlp"])
        versions = CounterMetricFamily("shieldwall_stored_versions", "Versions stored, by "
                                       "the channel they came through (import: imports)",
                                       labels=["channel"])
        sightings = GaugeMetricFamily("shieldwall_sightings", "Sightings held: by this "
                                      "member, or by others", labels=["by"])
        with self.store.engine.connect() as conn:
            counts: dict[tuple[str, str], int] = {}
            for t, level, n in conn.execute(select(c.type, c.tlp, func.count())
                                            .where(c.is_latest).group_by(c.type, c.tlp)):
                key = (_type_label(t), TLP(level).short)
                counts[key] = counts.get(key, 0) + n
            channels: dict[str, int] = {}
            for ch, n in conn.execute(select(c.channel, func.count()).group_by(c.channel)):
                label = ch if ch in CHANNELS else "other"
                channels[label] = channels.get(label, 0) + n
            own = conn.execute(select(func.count()).where(
                c.is_latest, c.type == "sighting", c.created_by_ref == self.identity)).scalar()
            t = alert_outbox.c
            depth = conn.execute(select(t.output, func.count(), func.min(t.created_us))
                                 .where(t.delivered_us.is_(None)).group_by(t.output)).all()
        for (typ, level), n in sorted(counts.items()):
            by_type.add_metric([typ, level], n)
        for ch, n in sorted(channels.items()):
            versions.add_metric([ch], n)
        total_sightings = sum(n for (typ, _), n in counts.items() if typ == "sighting")
        sightings.add_metric(["this-member"], own or 0)
        sightings.add_metric(["others"], total_sightings - (own or 0))

        hunted, spent = hunt_totals(self.store)
        events = CounterMetricFamily("shieldwall_hunt_events", "Telemetry events hunted")
        events.add_metric([], hunted)
        seconds = CounterMetricFamily("shieldwall_hunt_seconds", "Seconds spent hunting")
        seconds.add_metric([], spent)

        now = time.time()
        lag = GaugeMetricFamily("shieldwall_peer_sync_lag_seconds", "Seconds since the last "
                                "successful sync with each peer", labels=["peer"])
        failing = GaugeMetricFamily("shieldwall_peer_sync_failing", "1 when the last sync "
                                    "attempt with the peer failed", labels=["peer"])
        refused = CounterMetricFamily("shieldwall_peer_refused", "Objects of ours the peer "
                                      "refused", labels=["peer"])
        arrivals = CounterMetricFamily("shieldwall_refused_arrivals", "Objects from the peer "
                                       "this node refused (arrival rules)", labels=["peer"])
        for name, st in self.peers():
            if st.last_success_us:
                lag.add_metric([name], max(0.0, now - st.last_success_us / 1e6))
            failing.add_metric([name], 1.0 if st.last_error_us > st.last_success_us else 0.0)
            refused.add_metric([name], st.refused)
            arrivals.add_metric([name], st.rejected)

        outbox = GaugeMetricFamily("shieldwall_outbox_depth", "Alerts waiting for delivery",
                                   labels=["output"])
        oldest = GaugeMetricFamily("shieldwall_outbox_oldest_seconds", "Age of the oldest "
                                   "alert waiting", labels=["output"])
        for output, n, first in depth:
            outbox.add_metric([output], n)
            oldest.add_metric([output], max(0.0, now - first / 1e6))
        return [by_type, versions, sightings, events, seconds, lag, failing, refused,
                arrivals, outbox, oldest]


class Metrics:
    """A node's registry: the store collector and this process's failed sign-ins."""

    def __init__(self, collector: StoreCollector) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self.failed_logins = Counter("shieldwall_failed_logins", "Failed sign-ins (a TAXII "
                                     "request with wrong credentials, a dashboard sign-in) "
                                     "in this process", registry=self.registry)

    def text(self) -> bytes:
        return generate_latest(self.registry)


def allowed(client: str | None, authorization: str | None, *, token: str | None,
            loopback: bool) -> bool:
    """May this client scrape? Loopback when allowed, else the metrics token."""
    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
            return True
    if loopback and client:
        try:
            return ipaddress.ip_address(client).is_loopback
        except ValueError:
            return False
    return False


def read_token(path: str | None) -> str | None:
    if not path:
        return None
    from shieldwall.errors import ShieldwallError

    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ShieldwallError(f"observe.metrics_token_file {path}: {exc.strerror}") from None
    if len(token) < 16:
        raise ShieldwallError(f"observe.metrics_token_file {path}: fewer than 16 characters")
    return token


def mount(app: Any, metrics: Metrics, *, token: str | None, loopback: bool) -> None:
    """Serve `/metrics` on `app` (the TAXII server's, with the dashboard) and count failed
    sign-ins: 401 answers to requests that carried credentials or a sign-in form."""
    @app.middleware("http")
    async def count_failed_logins(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if response.status_code == 401 and (
                "authorization" in request.headers
                or (request.method == "POST" and request.url.path.endswith("/login"))):
            metrics.failed_logins.inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:
        client = request.client.host if request.client else None
        if not allowed(client, request.headers.get("authorization"), token=token,
                       loopback=loopback):
            return Response("metrics: loopback or the metrics token only\n", status_code=403,
                            media_type="text/plain")
        return Response(metrics.text(), media_type=CONTENT_TYPE)
