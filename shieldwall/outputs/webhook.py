"""Alerts as signed JSON POSTs to a receiver's URL.

The body is the alert's JSON, byte for byte as it was enqueued. The receiver checks
`X-Shieldwall-Signature: t=<unix seconds>,v1=<hex>`, where v1 is HMAC-SHA256 under the
shared secret of `<t>.<body>`: the body cannot be changed, and the timestamp, signed
with it, lets the receiver refuse a captured request replayed later (`verify`, with a
tolerance of a few minutes). `Idempotency-Key` (also in the body as `key`) is the same
on every retry of one alert: a receiver that has seen it drops the repeat.

Any 2xx is delivered; anything else (an error status, a timeout, a connection refused,
an answer that is not HTTP) is a failure the outbox retries with backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from pathlib import Path

import httpx

from shieldwall.outputs.config import TargetConfig
from shieldwall.outputs.errors import DeliveryError, OutputError
from shieldwall.outputs.outbox import Entry

SIGNATURE_HEADER = "X-Shieldwall-Signature"
KEY_HEADER = "Idempotency-Key"
TOLERANCE = 300  # seconds a signature's timestamp may be off, either way


def read_secret(target: TargetConfig) -> bytes:
    path = target.secret_file or ""
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise OutputError(f"output {target.name!r}: cannot read secret_file {path}: "
                          f"{exc.strerror}") from None
    if len(secret) < 16:
        raise OutputError(f"output {target.name!r}: secret_file {path} holds fewer than 16 "
                          "bytes; make a long random secret (openssl rand -hex 32)")
    return secret


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: bytes, header: str, body: bytes, *, now: float | None = None,
           tolerance: int = TOLERANCE) -> bool:
    """Does `header` sign exactly `body`, within `tolerance` seconds of `now`? (For
    receivers; docs/sensors.md shows one.)"""
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, ts), f"t={ts},v1={fields.get('v1', '')}")


def tls_context(target: TargetConfig) -> ssl.SSLContext:
    """The receiver's CA (else the system's) and our client certificate, if any."""
    try:
        ctx = ssl.create_default_context(cafile=target.tls_ca)
        if target.tls_cert:
            ctx.load_cert_chain(target.tls_cert, target.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise OutputError(f"output {target.name!r}: TLS files: {exc}") from None
    return ctx


class WebhookSender:
    def __init__(self, target: TargetConfig) -> None:
        self.target = target
        self.secret = read_secret(target)
        self.client = httpx.AsyncClient(
            timeout=target.timeout, verify=tls_context(target), follow_redirects=False,
            limits=httpx.Limits(max_connections=target.concurrency))

    async def send(self, entry: Entry) -> None:
        body = entry.body.encode()
        headers = {"Content-Type": "application/json", KEY_HEADER: entry.key,
                   SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
                   "User-Agent": "shieldwall-alerts"}
        try:
            # One deadline for the whole exchange: a receiver trickling bytes never
            # trips a timeout per read.
            answer = await asyncio.wait_for(
                self.client.post(self.target.url, content=body, headers=headers),
                self.target.timeout)
        except TimeoutError:
            raise DeliveryError(f"no answer in {self.target.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(f"HTTP {answer.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
