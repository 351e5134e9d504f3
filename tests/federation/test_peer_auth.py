"""How this node authenticates to a peer, per peer: an API-key header, and a TLS client
certificate checked by the peer (with the peer's certificate checked against a CA file),
each against a small TAXII root on 127.0.0.1 that serves only whoever presents it.
Basic auth is tested against medallion (test_foreign_taxii.py), Bearer node to node."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.factories import indicator
from tests.federation.conftest import SHIELDWALL, NodeHome, make_node, send_taxii

FEED = "identity--0f0e0d0c-0b0a-4909-8807-060504030201"


class Root:
    """A TAXII root serving one object from collection `c1` to requests `allowed` lets in
    (401 otherwise); no discovery document (404), as some servers have none."""

    def __init__(self, allowed: Callable[[BaseHTTPRequestHandler], bool],
                 tls: ssl.SSLContext | None = None) -> None:
        self.obj = indicator("198.51.100.200", created_by_ref=FEED)
        self.headers: list[dict[str, str]] = []
        root = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                root.headers.append(dict(self.headers))
                if not allowed(self):
                    self.send_error(401)
                    return
                if self.path.startswith("/api/collections/c1/objects/"):
                    body: Any = {"more": False, "objects": [root.obj]}
                elif self.path.startswith("/api/collections/"):
                    body = {"collections": [{"id": "c1", "title": "feed", "can_read": True,
                                             "can_write": False}]}
                else:
                    self.send_error(404)
                    return
                send_taxii(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def cli(node: NodeHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHIELDWALL, *args, "--home", str(node.home)], text=True,
                          env=os.environ | {"COLUMNS": "400"}, capture_output=True,
                          timeout=120)


def test_an_api_key_goes_in_the_header_the_peer_names(tmp_path: Path) -> None:
    node = make_node(tmp_path, "south")
    key = "k-3f9a1c"
    root = Root(lambda h: h.headers.get("X-API-Key") == key)
    try:
        (tmp_path / "key").write_text(key + "\n")
        (tmp_path / "key").chmod(0o644)
        r = cli(node, "peer", "add", "feedhub", root.url, "--auth", "api-key",
                "--api-key-header", "X-API-Key", "--secret-file", str(tmp_path / "key"),
                "--pull", "feed")
        assert r.returncode == 0 and key not in r.stdout, r.stdout + r.stderr
        assert "readable by others" in r.stdout  # said, not refused
        (tmp_path / "key").chmod(0o600)
        r = cli(node, "peer", "add", "feedhub", root.url, "--auth", "api-key", "--replace",
                "--api-key-header", "X-API-Key", "--secret-file", str(tmp_path / "key"),
                "--pull", "feed")
        assert r.returncode == 0 and "readable by others" not in r.stdout
        r = cli(node, "sync", "--retries", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert root.obj["id"] in node.ids()
        assert all("Authorization" not in h for h in root.headers)
        assert key not in (node.home / "shieldwall.toml").read_text()
    finally:
        root.close()


def _pki(tmp: Path) -> dict[str, Path]:
    """A CA, the peer's certificate for 127.0.0.1 and this node's client certificate."""
    now = dt.datetime.now(dt.UTC)

    def cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
             signer: ec.EllipticCurvePrivateKey, ca: bool = False,
             ip: str | None = None) -> x509.Certificate:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ip:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        return b.sign(signer, hashes.SHA256())

    out: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = cert("test CA", ca_key, ca_name, ca_key, ca=True)
    for name, ip in (("server", "127.0.0.1"), ("client", None)):
        k = ec.generate_private_key(ec.SECP256R1())
        c = cert(name, k, ca_name, ca_key, ip=ip)
        out[name] = tmp / f"{name}.pem"
        out[name].write_bytes(c.public_bytes(serialization.Encoding.PEM))
        out[f"{name}-key"] = tmp / f"{name}.key"
        out[f"{name}-key"].write_bytes(k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    out["ca"] = tmp / "ca.pem"
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return out


def test_a_tls_client_certificate_is_presented_and_the_peer_checked_by_its_ca(
        tmp_path: Path) -> None:
    node = make_node(tmp_path, "south")
    pki = _pki(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki["server"], pki["server-key"])
    tls.load_verify_locations(pki["ca"])
    tls.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    root = Root(lambda h: True, tls)
    try:
        r = cli(node, "peer", "add", "certified", root.url, "--auth", "none",
                "--tls-ca", str(pki["ca"]), "--pull", "c1")
        assert r.returncode == 0, r.stdout + r.stderr
        r = cli(node, "sync", "--retries", "0")
        assert r.returncode == 1 and root.obj["id"] not in node.ids()
        r = cli(node, "peer", "add", "certified", root.url, "--auth", "none", "--replace",
                "--tls-cert", str(pki["client"]), "--tls-key", str(pki["client-key"]),
                "--tls-ca", str(pki["ca"]), "--pull", "c1")
        assert r.returncode == 0 and "client certificate" in r.stdout, r.stdout + r.stderr
        r = cli(node, "sync", "--retries", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert root.obj["id"] in node.ids()
    finally:
        root.close()


def test_objects_a_peer_does_not_answer_for_are_pushed_again(tmp_path: Path) -> None:
    """A status `complete` that accounts for fewer objects than were posted: the push
    fails, its cursor stays, and the next sync posts them again."""
    from shieldwall.policy import member_identity_id
    from tests.federation.conftest import put

    node = make_node(tmp_path, "south")
    own = [indicator(f"203.0.113.{i}", created_by_ref=member_identity_id("south"))
           for i in range(3)]
    put(node, own)
    posted: list[list[str]] = []
    honest = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: Any, code: int = 200) -> None:
            send_taxii(self, body, code)

        def do_GET(self) -> None:
            if self.path.startswith("/api/collections/"):
                self._send({"collections": [{"id": "w1", "title": "inbox", "can_read": False,
                                             "can_write": True}]})
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            objs = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["objects"]
            posted.append([o["id"] for o in objs])
            kept = objs if honest.is_set() else objs[:1]
            self._send({"id": f"s{len(posted)}", "status": "complete",
                        "total_count": len(objs), "success_count": len(kept),
                        "successes": [{"id": o["id"]} for o in kept], "failure_count": 0,
                        "pending_count": 0}, 202)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        (tmp_path / "t").write_text("token")
        r = cli(node, "peer", "add", "quiet", f"http://127.0.0.1:{httpd.server_address[1]}/",
                "--secret-file", str(tmp_path / "t"), "--pull", "none", "--push", "inbox")
        assert r.returncode == 0, r.stdout + r.stderr
        r = cli(node, "sync", "--retries", "0")
        assert r.returncode == 1 and "answers for" in r.stdout + r.stderr
        honest.set()
        r = cli(node, "sync", "--retries", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert {o["id"] for o in own} <= set(posted[-1])
    finally:
        httpd.shutdown()
        httpd.server_close()
