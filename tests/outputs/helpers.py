"""What the output tests share: STIX builders, a routing setup, a real HTTP receiver."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shieldwall.outputs.alerts import Audience, Router
from shieldwall.outputs.config import OutputsConfig, TargetConfig
from shieldwall.outputs.runner import Runner, make_sender
from shieldwall.policy import Member, member_identity_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator

SECRET = b"0123456789abcdef0123456789abcdef"


def sighting(at: str, of: str, *, tlp: TLP = TLP.AMBER, audience: Sequence[str] = (),
             by: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
        "created": "2024-05-01T00:00:00.000Z", "modified": "2024-05-01T00:00:00.000Z",
        "created_by_ref": member_identity_id(by or at), "sighting_of_ref": of,
        "where_sighted_refs": [member_identity_id(at)], "count": 1,
        "object_marking_refs": [tlp_marking_ref(tlp)],
    }
    if audience:
        obj["x_shieldwall_audience"] = list(audience)
    return obj


def own_indicator(store: Store, member: str, tlp: TLP = TLP.GREEN) -> str:
    ind = indicator(tlp=tlp, created_by_ref=member_identity_id(member), name="bad host")
    store.put(ind, Provenance(member))
    return str(ind["id"])


def audience(output: str, member: str, tier: str = "ally",
             kinds: Sequence[str] = ("sighting", "sighting-elsewhere", "campaign")) -> Audience:
    """The audience TAXII's own `access_for` gives `member`."""
    return Audience(output, member, member_identity_id(member),
                    access_for(Member(member, tier)), frozenset(kinds))


def webhook_target(name: str, url: str, secret_file: Path, **kw: Any) -> TargetConfig:
    secret_file.write_bytes(SECRET)
    return TargetConfig(name=name, type="webhook", url=url, secret_file=str(secret_file), **kw)


def runner_for(store: Store, targets: Sequence[tuple[TargetConfig, Audience]],
               **config: Any) -> Runner:
    router = Router(store, [a for _, a in targets], node_member="cert-a")
    router.route()  # a new output starts at the store's head
    senders = {t.name: make_sender(t) for t, _ in targets}
    return Runner(router, [t for t, _ in targets], senders,
                  OutputsConfig(targets=[t for t, _ in targets], **config))


class Receiver:
    """A webhook receiver on 127.0.0.1: answers `mode` ("ok", "500", "hang", "garbage"),
    records every request; stops and starts again on the same port (down, then up)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.mode = "ok"
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rec.lock:
                    rec.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                         body))
                if rec.mode == "hang":
                    rec.release.wait(30)
                    return
                if rec.mode == "garbage":
                    self.wfile.write(b"\x00\xffnot http at all\r\n\r\n")
                    return
                code = 500 if rec.mode == "500" else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            self.release = threading.Event()

    def delivered_keys(self) -> list[str]:
        with self.lock:
            return [h.get("idempotency-key", "") for h, _ in self.requests]


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    """Poll `predicate` until it holds (a bound on a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def make_pki(tmp: Path, *, server_days: float = 1.0) -> dict[str, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it (`server_days` < 0:
    one that expired that many days ago), as PEM files: ca, server, server-key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shieldwall test CA")])

    def build(subject: x509.Name, public: Any, ca: bool, start: dt.datetime,
              end: dt.datetime) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
             .public_key(public).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(ca_key, hashes.SHA256())

    end = now + dt.timedelta(days=server_days)
    certs = {
        "ca": build(ca_name, ca_key.public_key(), True, now - dt.timedelta(days=30),
                    now + dt.timedelta(days=30)),
        "server": build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
                        key.public_key(), False, min(now, end) - dt.timedelta(days=2), end),
    }
    out = {name: tmp / f"{name}.pem" for name in certs}
    for name, cert in certs.items():
        out[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out["server-key"] = tmp / "server.key"
    out["server-key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return out


_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}


def once(runner: Runner) -> dict[str, Any]:
    """`runner.once()` on the runner's own event loop (its connections live on one loop,
    as in `outputs run`)."""
    loop = _LOOPS.setdefault(id(runner), asyncio.new_event_loop())
    return loop.run_until_complete(runner.once())


def close(runner: Runner) -> None:
    loop = _LOOPS.pop(id(runner), None) or asyncio.new_event_loop()
    try:
        loop.run_until_complete(runner.close())
    finally:
        loop.close()
