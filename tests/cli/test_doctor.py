"""`shieldwall doctor` against real nodes and servers on 127.0.0.1: a healthy node, a
wrong token, an expired certificate, an unmigrated database, a peer whose clock is off."""

from __future__ import annotations

import email.utils
import os
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from shieldwall.config import init_home
from shieldwall.store.migrate import upgrade
from tests.outputs.helpers import make_pki
from tests.taxii.conftest import SHIELDWALL, add_members, make_home, start_server


def doctor(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHIELDWALL, "doctor", "--home", str(home), "--timeout", "5"],
                          capture_output=True, text=True, timeout=120,
                          env=os.environ | {"COLUMNS": "400"})


def _lines(r: subprocess.CompletedProcess[str], level: str) -> list[str]:
    return [line for line in r.stdout.splitlines() if line.startswith(level)]


def test_a_healthy_node_then_a_wrong_token_against_a_real_peer(tmp_path: Path) -> None:
    peer_home = make_home(tmp_path / "b")
    token = add_members(peer_home, {"cert-a": "ally"})["cert-a"]
    server = start_server(peer_home, "--no-federate")
    try:
        (tmp_path / "token").write_text(token)
        home = tmp_path / "a"
        init_home(home, "cert-a", peers=[{"name": "cert-b", "url": server.url + "/",
                                          "token_file": str(tmp_path / "token")}])
        subprocess.run([SHIELDWALL, "stats", "--home", str(home)], check=True,
                       capture_output=True, timeout=120)  # creates the schema
        r = doctor(home)
        assert r.returncode == 0, r.stdout + r.stderr
        assert any("peer cert-b:" in line and "credentials accepted" in line
                   for line in _lines(r, "ok"))
        assert any(line.startswith("ok   clock vs cert-b") for line in r.stdout.splitlines())
        assert any("database:" in line for line in _lines(r, "ok"))

        (tmp_path / "token").write_text("swt_" + "x" * 43)
        r = doctor(home)
        assert r.returncode == 1
        (bad,) = [line for line in _lines(r, "FAIL") if "peer cert-b" in line]
        assert "refused our credentials (HTTP 401)" in bad and str(tmp_path / "token") in bad
        assert "1 problem(s) found" in r.stdout
    finally:
        server.stop()


def test_an_expired_certificate_is_named_with_its_date(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, server_days=-3)
    home = make_home(tmp_path, server={"tls_cert": str(pki["server"]),
                                       "tls_key": str(pki["server-key"])})
    r = doctor(home)
    assert r.returncode == 1
    (line,) = [x for x in _lines(r, "FAIL") if "server.tls_cert" in x]
    assert "expired on" in line and "renew it" in line


class _Peer:
    """A TLS or plain HTTP server answering discovery with a chosen Date header."""

    def __init__(self, tls: ssl.SSLContext | None = None, skew: float = 0.0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"title": "peer"}'
                self.send_response_only(200)
                self.send_header("Date", email.utils.formatdate(time.time() + skew,
                                                                usegmt=True))
                self.send_header("Content-Type", "application/taxii+json;version=2.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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


def test_a_peer_with_an_expired_certificate_and_one_with_a_clock_off(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, server_days=-1)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki["server"], pki["server-key"])
    expired, late = _Peer(tls), _Peer(skew=-3_600)
    try:
        (tmp_path / "token").write_text("t" * 40)
        home = make_home(tmp_path, peers=[
            {"name": "old-cert", "url": expired.url, "token_file": str(tmp_path / "token"),
             "tls_ca": str(pki["ca"])},
            {"name": "late", "url": late.url, "token_file": str(tmp_path / "token")}])
        r = doctor(home)
    finally:
        expired.close()
        late.close()
    assert r.returncode == 1
    fails = _lines(r, "FAIL")
    assert any("peer old-cert" in x and "certificate is not accepted" in x and "expired" in x
               for x in fails), r.stdout
    # The Date header has whole seconds: 3,600 or 3,601 behind.
    assert any("clock vs late" in x and re.search(r"3,60[01] s behind ours", x)
               for x in fails), r.stdout


def test_an_unmigrated_database_and_a_bad_output_are_said_in_plain_words(
        tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "cert-a")
    engine = create_engine(f"sqlite:///{home / 'shieldwall.db'}")
    upgrade(engine, "0010")
    engine.dispose()
    r = doctor(home)
    assert r.returncode == 1
    (line,) = [x for x in _lines(r, "FAIL") if "database" in x]
    assert "schema revision 0010" in line and "upgrades it in place" in line

    cfg = home / "shieldwall.toml"
    cfg.write_text(cfg.read_text() + '\n[[outputs.targets]]\nname = "siem"\ntype = "webhook"\n'
                   'url = "ftp://siem.example/"\nsecret_file = "/nonexistent"\n')
    r = doctor(home)
    assert r.returncode == 1
    assert "bad url 'ftp://siem.example/'" in r.stdout and len(r.stdout.splitlines()) == 2
