"""Syslog alerts to real sockets on 127.0.0.1: RFC 5424 over UDP, TCP and TLS (octet
counting), JSON and CEF payloads, parsed back field by field."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from pathlib import Path

import orjson
import pytest

from shieldwall.outputs.config import TargetConfig
from shieldwall.outputs.outbox import Entry
from shieldwall.outputs.syslog import SyslogSender, cef, cef_header, cef_value
from shieldwall.store import Provenance, Store
from tests.outputs.helpers import (
    audience,
    close,
    make_pki,
    once,
    own_indicator,
    runner_for,
    sighting,
)

HEADER = re.compile(rb"^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")


def parse_5424(msg: bytes) -> dict:
    """The RFC 5424 fields of one message (the structured data's escapes undone)."""
    m = HEADER.match(msg)
    assert m, msg[:80]
    pri, ts, host, app, procid, msgid = m.groups()
    rest = msg[m.end():].decode()
    assert rest.startswith("[")
    params: dict[str, str] = {}
    i = rest.index(" ") + 1
    sd_id = rest[1:i - 1]
    while rest[i] != "]":
        eq = rest.index("=", i)
        name, j, value = rest[i:eq].strip(), eq + 2, []
        while rest[j] != '"':
            if rest[j] == "\\":
                j += 1
            value.append(rest[j])
            j += 1
        params[name] = "".join(value)
        i = j + 1
    payload = rest[i + 2:]
    return {"pri": int(pri), "ts": ts.decode(), "host": host.decode(), "app": app.decode(),
            "procid": procid.decode(), "msgid": msgid.decode(), "sd_id": sd_id,
            "sd": params, "msg": payload}


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    head: list[str] = []
    cur, i = "", 0
    while len(head) < 7:
        c = line[i]
        if c == "\\":
            cur += line[i + 1]
            i += 2
            continue
        if c == "|":
            head.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    ext: dict[str, str] = {}
    for m in re.finditer(r"(\w+)=((?:\\.|[^\\=])*?)(?= \w+=|$)", line[i:]):
        ext[m.group(1)] = re.sub(r"\\(.)", lambda x: {"n": "\n", "r": "\r"}.get(
            x.group(1), x.group(1)), m.group(2))
    return head, ext


class Listener:
    """A syslog collector on 127.0.0.1: UDP datagrams, or TCP/TLS octet-counted frames."""

    def __init__(self, kind: str, tls: ssl.SSLContext | None = None) -> None:
        self.kind = kind
        self.messages: list[bytes] = []
        self.got = threading.Condition()
        self.sock = socket.socket(socket.AF_INET,
                                  socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        if kind != "udp":
            self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        threading.Thread(target=self._serve, daemon=True).start()

    def _add(self, msg: bytes) -> None:
        with self.got:
            self.messages.append(msg)
            self.got.notify_all()

    def _serve(self) -> None:
        if self.kind == "udp":
            while True:
                try:
                    data, _ = self.sock.recvfrom(65535)
                except OSError:
                    return
                self._add(data)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            threading.Thread(target=self._frames, args=(conn,), daemon=True).start()

    def _frames(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            while b" " in buf:
                length, _, rest = buf.partition(b" ")
                n = int(length)  # octet counting: a bad frame fails the test here
                if len(rest) < n:
                    break
                self._add(rest[:n])
                buf = rest[n:]
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk

    def wait(self, n: int) -> list[bytes]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.messages) >= n, 30)
            return list(self.messages)

    def close(self) -> None:
        self.sock.close()


def _listener_for(kind: str, tmp: Path) -> tuple[Listener, dict]:
    if kind == "udp":
        return Listener("udp"), {}
    if kind == "tcp":
        return Listener("tcp"), {}
    pki = make_pki(tmp)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"], pki["server-key"])
    return Listener("tcp", ctx), {"tls_ca": str(pki["ca"])}


@pytest.mark.parametrize("kind", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("fmt", ["json", "cef"])
def test_alerts_arrive_as_rfc5424_over_each_transport(sqlite_store: Store, tmp_path: Path,
                                                      kind: str, fmt: str) -> None:
    lst, extra = _listener_for(kind, tmp_path)
    try:
        target = TargetConfig(name="syslog", type="syslog", format=fmt,
                              url=f"{kind}://127.0.0.1:{lst.port}", **extra)
        runner = runner_for(sqlite_store, [(target, audience("syslog", "cert-a"))])
        ind = own_indicator(sqlite_store, "cert-a")
        sightings = [sighting("cert-a", ind) for _ in range(3)]
        sqlite_store.put_many(sightings, Provenance("cert-a"))
        assert once(runner)["syslog"].delivered == 3
        close(runner)
        got = [parse_5424(m) for m in lst.wait(3)]
    finally:
        lst.close()
    assert {g["msgid"] for g in got} == {"sighting"}
    assert all(g["pri"] == 16 * 8 + 4 and g["app"] == "shieldwall" for g in got)
    assert all(g["sd_id"] == "shieldwall@32473" and g["sd"]["tlp"] == "amber" for g in got)
    ids = {g["sd"]["id"] for g in got}
    assert ids == {s["id"] for s in sightings}
    for g in got:
        if fmt == "json":
            assert g["msg"].startswith("\ufeff")
            body = orjson.loads(g["msg"][1:])
            assert body["key"] == g["sd"]["key"] and body["object"]["id"] == g["sd"]["id"]
        else:
            head, ext = parse_cef(g["msg"])
            assert head[:5] == ["CEF:0", "Shieldwall", "Shieldwall", head[3], "sighting"]
            assert ext["cs1"] == g["sd"]["id"] and ext["externalId"] == g["sd"]["key"]
            assert ext["cs2"] == "amber"


def test_cef_escapes_what_would_break_its_fields() -> None:
    hostile = 'a|b=c\\d\ne\rf'
    assert cef_header(hostile) == "a\\|b=c\\\\d e f"
    assert cef_value(hostile) == "a|b\\=c\\\\d\\ne\\rf"
    alert = {"key": "k=1", "kind": "sighting", "summary": hostile, "node": "n|1",
             "audience": "x=y", "created": "2024-01-01T00:00:00Z",
             "object": {"id": "sighting--1", "object_marking_refs": []}}
    head, ext = parse_cef(cef(alert))
    assert len(head) == 7 and head[5] == "a|b=c\\d e f"
    assert ext["msg"] == hostile and ext["externalId"] == "k=1" and ext["cs3"] == "x=y"
    assert ext["cs4"] == "n|1"


def test_structured_data_values_are_escaped() -> None:
    from shieldwall.outputs.syslog import rfc5424

    body = orjson.dumps({"created": "2024-01-01T00:00:00Z", "object": {
        "id": 'x"] evil="1', "object_marking_refs": []}}).decode()
    msg = rfc5424(Entry(1, "s", 'k"]\\', "sighting", body, 0, 0), fmt="json", hostname="h")
    parsed = parse_5424(msg)
    assert parsed["sd"]["id"] == 'x"] evil="1' and parsed["sd"]["key"] == 'k"]\\'
    assert "evil" not in parsed["sd"]


def test_a_closed_collector_fails_the_alert_for_a_retry(tmp_path: Path) -> None:
    from shieldwall.outputs.errors import DeliveryError

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    sender = SyslogSender(TargetConfig(name="s", type="syslog", url=f"tcp://127.0.0.1:{port}",
                                       timeout=2))
    entry = Entry(1, "s", "k", "sighting", '{"created": "-", "object": {}}', 0, 0)

    async def go() -> None:
        try:
            await sender.send(entry)
        finally:
            await sender.close()

    with pytest.raises(DeliveryError):
        asyncio.run(go())
