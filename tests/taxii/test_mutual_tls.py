"""Mutual TLS on `shieldwall serve --tls-client-ca`: a client without a certificate the CA
signed is refused in the handshake; one with it still needs its member token."""

from __future__ import annotations

import re
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from shieldwall.config import init_home
from shieldwall.policy import Members
from shieldwall.store import Store
from tests.federation.test_peer_auth import _pki
from tests.taxii.conftest import SHIELDWALL


def _serve(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([SHIELDWALL, "serve", "--home", str(home), "--port", "0",
                             "--no-federate", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        m = re.search(r"serving TAXII 2\.1 on (https://[\d.]+:\d+)/", line)
        if m:
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("shieldwall serve did not start")


def test_a_peer_without_a_client_certificate_is_refused_in_the_handshake(
        tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    home = tmp_path / "north"
    init_home(home, "cert-north")
    store = Store.open(f"sqlite:///{home / 'shieldwall.db'}")
    token = Members(store.engine).add("cert-south", "ally")
    store.close()
    proc, url = _serve(home, "--tls-cert", str(pki["server"]), "--tls-key",
                       str(pki["server-key"]), "--tls-client-ca", str(pki["ca"]))
    try:
        trust = ssl.create_default_context(cafile=str(pki["ca"]))
        # No certificate: no TLS session at all.
        with pytest.raises(httpx.HTTPError), httpx.Client(verify=trust, timeout=10) as bare:
            bare.get(f"{url}/taxii2/", headers={"Authorization": f"Bearer {token}"})
        trust.load_cert_chain(pki["client"], pki["client-key"])
        with httpx.Client(verify=trust, timeout=10) as certified:
            assert certified.get(f"{url}/taxii2/").status_code == 401  # token still needed
            ok = certified.get(f"{url}/taxii2/", headers={
                "Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"})
            assert ok.status_code == 200, ok.text
    finally:
        proc.terminate()
        proc.wait(10)


def test_client_certificates_without_tls_are_refused_at_start(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    home = tmp_path / "north"
    init_home(home, "cert-north")
    done = subprocess.run([SHIELDWALL, "serve", "--home", str(home), "--port", "0",
                           "--no-federate", "--tls-client-ca", str(pki["ca"])],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "client certificates (--tls-client-ca) need --tls-cert" in done.stderr
