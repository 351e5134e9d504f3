"""Alerts as RFC 5424 syslog messages over UDP, TCP or TLS, with a JSON or CEF payload.

UDP sends one message a datagram (RFC 5426); TCP and TLS frame each by octet counting,
`LENGTH SP MESSAGE` (RFC 6587 section 3.4.1, RFC 5425). Syslog has no acknowledgement: an
alert counts as delivered once the kernel took it (UDP) or the stream drained it
(TCP/TLS); a refused or dropped connection fails it and the outbox retries.

The header: `<PRI>1 TIMESTAMP HOSTNAME shieldwall PROCID KIND [shieldwall@32473 ...]`,
facility local0, severity by kind; the structured data carries the idempotency key, the
object's id and TLP. 32473 is the private enterprise number RFC 5612 reserves for
documentation: a site that registers its own changes `SD_ID`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import orjson

from shieldwall import __version__
from shieldwall.outputs.config import TargetConfig
from shieldwall.outputs.errors import DeliveryError
from shieldwall.outputs.outbox import Entry
from shieldwall.outputs.webhook import tls_context

SD_ID = "shieldwall@32473"
FACILITY = 16  # local0
SEVERITY = {"consultation": 2, "assistance-request": 2, "campaign": 3, "sighting": 4,
            "sighting-elsewhere": 4}
CEF_SEVERITY = {2: 9, 3: 7, 4: 5, 5: 3, 6: 1}
UDP_MAX = 8_192  # bytes a datagram: larger alerts go without their object bodies
_BOM = "\ufeff"


def _sd_value(value: str) -> str:
    """An SD-PARAM value: `"`, `\\` and `]` escaped (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def cef_header(value: str) -> str:
    """A CEF header field: `\\` and `|` escaped; a line break would end the event."""
    return (value.replace("\\", "\\\\").replace("|", "\\|")
            .replace("\r", " ").replace("\n", " "))


def cef_value(value: str) -> str:
    """A CEF extension value: `\\` and `=` escaped, line breaks as `\\n` / `\\r`."""
    return (value.replace("\\", "\\\\").replace("=", "\\=")
            .replace("\r", "\\r").replace("\n", "\\n"))


def _tlp(obj: dict[str, Any]) -> str:
    from shieldwall.stix.markings import TLP, resolve_tlp

    return resolve_tlp(obj, TLP.AMBER).short


def cef(alert: dict[str, Any]) -> str:
    obj = alert.get("object") or {}
    severity = SEVERITY.get(str(alert.get("kind")), 6)
    ext = {
        "rt": str(alert.get("created", "")), "msg": str(alert.get("summary", "")),
        "externalId": str(alert.get("key", "")),
        "cs1Label": "stixId", "cs1": str(obj.get("id", "")),
        "cs2Label": "tlp", "cs2": _tlp(obj) if obj else "",
        "cs3Label": "audience", "cs3": str(alert.get("audience", "")),
        "cs4Label": "node", "cs4": str(alert.get("node", "")),
    }
    head = ["CEF:0", "Shieldwall", "Shieldwall", __version__, str(alert.get("kind", "")),
            str(alert.get("summary", ""))[:512], str(CEF_SEVERITY[severity])]
    return "|".join([head[0]] + [cef_header(h) for h in head[1:]]) + "|" + " ".join(
        f"{k}={cef_value(v)}" for k, v in ext.items())


def rfc5424(entry: Entry, *, fmt: str, hostname: str, limit: int | None = None) -> bytes:
    """One syslog message for an alert (without transport framing)."""
    alert = orjson.loads(entry.body)
    obj = alert.get("object") or {}
    severity = SEVERITY.get(entry.kind, 6)
    sd = (f'[{SD_ID} key="{_sd_value(entry.key)}" kind="{_sd_value(entry.kind)}" '
          f'id="{_sd_value(str(obj.get("id", "")))}" tlp="{_sd_value(_tlp(obj) if obj else "")}"]')
    head = (f"<{FACILITY * 8 + severity}>1 {alert.get('created', '-')} {hostname[:255]} "
            f"shieldwall {os.getpid()} {entry.kind[:32]} {sd} ")
    body = cef(alert) if fmt == "cef" else _BOM + entry.body
    message = (head + body).encode()
    if limit is not None and len(message) > limit and fmt == "json":
        short = {k: alert.get(k) for k in ("key", "kind", "summary", "node", "audience",
                                          "created")}
        short["object_id"] = obj.get("id")
        message = (head + _BOM + orjson.dumps(short).decode()).encode()
    return message[:limit] if limit is not None else message


def octet_counted(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


class SyslogSender:
    def __init__(self, target: TargetConfig) -> None:
        self.target = target
        parts = urlsplit(target.url)
        self.scheme = parts.scheme
        self.host, self.port = parts.hostname or "", int(parts.port or 0)
        self.ssl = tls_context(target) if self.scheme == "tls" else None
        self.hostname = socket.gethostname() or "-"
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()  # one stream: messages go out whole, one at a time
        self.udp: socket.socket | None = None

    async def send(self, entry: Entry) -> None:
        if self.scheme == "udp":
            await self._send_udp(rfc5424(entry, fmt=self.target.format,
                                         hostname=self.hostname, limit=UDP_MAX))
            return
        frame = octet_counted(rfc5424(entry, fmt=self.target.format, hostname=self.hostname))
        async with self.lock:
            try:
                await asyncio.wait_for(self._write(frame), self.target.timeout)
            except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
                await self._drop()
                raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None

    async def _write(self, frame: bytes) -> None:
        if self.writer is None or self.writer.is_closing():
            _, self.writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None)
        self.writer.write(frame)
        await self.writer.drain()

    async def _send_udp(self, message: bytes) -> None:
        try:
            if self.udp is None:
                info = await asyncio.get_running_loop().getaddrinfo(
                    self.host, self.port, type=socket.SOCK_DGRAM)
                family, _, _, _, addr = info[0]
                self.udp = socket.socket(family, socket.SOCK_DGRAM)
                self.udp.connect(addr)
            self.udp.send(message)
        except OSError as exc:
            if self.udp is not None:
                self.udp.close()
                self.udp = None
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None

    async def _drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def close(self) -> None:
        await self._drop()
        if self.udp is not None:
            self.udp.close()
            self.udp = None
