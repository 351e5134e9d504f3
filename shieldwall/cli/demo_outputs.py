"""The demo's alert outputs (`make demo`, docs/sensors.md): a SOC's webhook receiver gets them.

Before the outbreak, a webhook receiver starts inside the demo (Python's `http.server` on
127.0.0.1, in a thread), checking every request's HMAC signature as docs/sensors.md's
receiver does and dropping repeated idempotency keys. Two nodes get a webhook output to
it, delivered by the same runner as `shieldwall outputs run` (one thread, one event loop):
cert-north's SOC hears of sightings of its indicators elsewhere (the WannaCry hunts, the
team's finding, the blind hit), the coordination cell of assistance requests, campaigns
and consultation recommendations. After the last act the demo waits for each output's
outbox to drain and says, one line per output, what its receiver got.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shieldwall.cli.common import counted

WAIT = 30.0
# node -> the alerts its SOC wants (config.ALERT_KINDS)
OUTPUTS = {"cert-north": ["sighting", "sighting-elsewhere", "campaign"],
           "coordination": ["assistance-request", "campaign", "consultation"]}


@dataclass
class _Inbox:
    """What one output's receiver got: alerts by key (a repeat is dropped), refusals."""

    secret: bytes
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeats: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def valid(self, header: str, body: bytes) -> bool:
        """docs/sensors.md's check: HMAC-SHA256 of `<t>.<body>`, `t` within five minutes."""
        fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            stamp = int(fields.get("t", ""))
        except ValueError:
            return False
        if abs(time.time() - stamp) > 300:
            return False
        mac = hmac.new(self.secret, str(stamp).encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(mac.hexdigest(), fields.get("v1", ""))


def _handler(inboxes: dict[str, _Inbox]) -> type[BaseHTTPRequestHandler]:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            inbox = inboxes.get(self.path.strip("/").rsplit("/", 1)[-1])
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(size, 16 << 20))
            if inbox is None or not inbox.valid(self.headers.get("X-Shieldwall-Signature",
                                                                 ""), body):
                if inbox is not None:
                    with inbox.lock:
                        inbox.refused += 1
                self.send_response(401)
                self.end_headers()
                return
            alert = json.loads(body)
            with inbox.lock:
                if alert["key"] in inbox.alerts:
                    inbox.repeats += 1
                else:
                    inbox.alerts[alert["key"]] = alert
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # the timeline speaks, not the server
            pass

    return Hook


@dataclass
class _Output:
    node: Any  # the demo's node
    name: str
    inbox: _Inbox
    runner: Any = None
    store: Any = None
    shieldwall_node: Any = None


def _runner(n: Any, name: str, url: str, secret: bytes, kinds: list[str]) -> _Output:
    """`n`'s node with one webhook output to `url`, and its runner (as `outputs run`)."""
    from shieldwall.cli.outputs import build_runner
    from shieldwall.config import load_config
    from shieldwall.node import Node
    from shieldwall.outputs.config import OutputsConfig, TargetConfig
    from shieldwall.store import Store

    path = n.home / f"{name}.secret"
    path.write_bytes(secret)
    path.chmod(0o600)
    target = TargetConfig(name=name, type="webhook", url=url, secret_file=str(path),
                          audience=n.name, alerts=kinds, timeout=5)
    cfg = load_config(n.home).model_copy(
        update={"outputs": OutputsConfig(targets=[target], poll_seconds=0.1)})
    out = _Output(n, name, _Inbox(secret))
    out.shieldwall_node = Node(cfg)
    out.store = Store.open(cfg.db_url, pooled=True)
    out.runner = build_runner(out.shieldwall_node, out.store)
    out.runner.router.route()  # the output starts here: it alerts on what comes next
    return out


def _drained(o: _Output) -> Callable[[], bool]:
    """Everything stored until now routed, every alert delivered and received."""
    from shieldwall.outputs.alerts import CURSOR_KEY
    from shieldwall.outputs.outbox import Outbox

    head = o.store.newest_seq()

    def check() -> bool:
        if int(o.store.kv_get(CURSOR_KEY + o.name) or -1) < head:
            return False
        st = next((s for s in Outbox(o.store).status() if s.output == o.name), None)
        return st is None or (st.pending == 0 and len(o.inbox.alerts) >= st.delivered)
    return check


def _said(o: _Output, names: dict[str, str]) -> str:
    kinds = Counter(a["kind"] for a in o.inbox.alerts.values())
    where = sorted({names.get(ref, ref) for a in o.inbox.alerts.values()
                    for ref in a["object"].get("where_sighted_refs") or ()})
    blind = sum(1 for a in o.inbox.alerts.values()
                if a["object"].get("x_shieldwall_blind_handle"))
    parts = [f"{k} {n}" for k, n in sorted(kinds.items())]
    text = (f"its webhook receiver got {counted(len(o.inbox.alerts), 'alert')} (signed, HMAC "
            f"checked; {o.inbox.repeats} repeated, {o.inbox.refused} refused): "
            f"{', '.join(parts) or 'none'}")
    if where:
        text += f"; sightings at {', '.join(where)}"
    if blind:
        text += f", {blind} of them the blind hit"
    return text


@contextlib.contextmanager
def webhook_outputs(nodes: Sequence[Any], tl: Callable[[str, str], None]) -> Iterator[None]:
    """Receivers and outputs running for the block; on leaving it, one line per output."""
    from shieldwall.node import member_identity_id

    by = {n.name: n for n in nodes}
    inboxes: dict[str, _Inbox] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(inboxes))
    serving = threading.Thread(target=server.serve_forever, name="demo-webhook", daemon=True)
    serving.start()
    port = server.server_address[1]
    outputs: list[_Output] = []
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            nonlocal loop, stop
            loop, stop = asyncio.get_running_loop(), asyncio.Event()
            started.set()
            await asyncio.gather(*(o.runner.run(stop) for o in outputs))

        asyncio.run(main())

    delivering = threading.Thread(target=run, name="demo-outputs", daemon=True)
    try:
        for member, kinds in OUTPUTS.items():
            name = f"{member}-soc"
            o = _runner(by[member], name, f"http://127.0.0.1:{port}/alerts/{name}",
                        secrets.token_hex(32).encode(), kinds)
            inboxes[name] = o.inbox
            outputs.append(o)
        delivering.start()
        started.wait(10)
        tl("alliance", f"webhook outputs at {', '.join(OUTPUTS)}: a SOC receiver on "
           f"127.0.0.1:{port} checks each alert's HMAC signature")
        yield
        for o in outputs:
            deadline = time.monotonic() + WAIT
            drained = _drained(o)
            while not drained() and time.monotonic() < deadline:
                time.sleep(0.05)
        names = {member_identity_id(n.name): n.name for n in nodes}
        for o in outputs:
            tl(o.node.name, _said(o, names))
    finally:
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if delivering.is_alive():
            delivering.join(10)
        server.shutdown()
        server.server_close()
        for o in outputs:
            o.store.close()
            o.shieldwall_node.close()
