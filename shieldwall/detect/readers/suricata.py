"""Suricata EVE JSON: flow, dns, http, tls, quic, fileinfo, smtp, dhcp, alert (and the 5-tuple
of any other event).

EVE mixes event types in one file; every batch has the union of their columns, null where an
event type has no such field; values in canonical form (`base.canonical_column`: names as
received on the wire, digests as a build prints them). Every DNS layout is read: v1
(`rrname`/`rdata` per record), v2 and v3 (`queries`, `answers` lists) and an alert's
(`query` list). An alert (or any event) carrying app-layer metadata (`http`, `tls`, `dns`,
`quic`, `smtp`, `email`) is read like the event of that type. The HTTP referrer
(`http.http_refer`) is a URL of the event too, and its host a domain name: each in a row of
its own after the event's (`elements`), so both the request and the referrer are matched.

Blocks of lines are parsed by Arrow (`eve_arrow`, ~4x); what Arrow cannot read as Suricata
writes it is read here, line by line, with one extractor per column (`COLUMNS`), which is
also the definition the Arrow reading is tested against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.readers import eve_arrow
from shieldwall.detect.readers.base import (
    LINE,
    TS,
    Observations,
    ReadStats,
    canonical_column,
    open_text,
)
from shieldwall.detect.readers.damage import DAMAGED, Truncated
from shieldwall.detect.readers.elements import assemble, spread, url_hosts
from shieldwall.detect.readers.jsonl import parse_time
from shieldwall.stix import bounded_json

CHUNK = 65536
_HTTP_EXT = "network-traffic:extensions.'http-request-ext'"


def _get(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def get(rec: dict[str, Any]) -> Any:
        v: Any = rec
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v
    return get


def _dns_name(rec: dict[str, Any]) -> str | None:
    dns = rec.get("dns") or {}
    if not isinstance(dns, dict):
        return None
    if "rrname" in dns:
        return dns["rrname"]
    qs = dns.get("queries") or dns.get("query") or []  # `query`: an alert's DNS metadata
    return qs[0].get("rrname") if isinstance(qs, list) and qs and isinstance(qs[0], dict) \
        else None


def _dns_answers(rec: dict[str, Any]) -> list[str] | None:
    dns = rec.get("dns") or {}
    out = [a["rdata"] for a in dns.get("answers") or [] if isinstance(a, dict) and "rdata" in a]
    for recs in (dns.get("grouped") or {}).values():
        out.extend(str(x) for x in recs if isinstance(x, str))
    if dns.get("type") == "answer" and "rdata" in dns:
        out.append(dns["rdata"])
    return list(dict.fromkeys(out)) or None


def _url(rec: dict[str, Any]) -> str | None:
    http = rec.get("http") or {}
    host, url = http.get("hostname"), http.get("url")
    if host is None or url is None:
        return None
    return url if "://" in url else f"http://{host}{url}"


_SNI, _QUIC_SNI, _HOSTNAME = _get("tls", "sni"), _get("quic", "sni"), _get("http", "hostname")
# Where each event type names its domain; an alert or another type tries them in turn.
_DOMAIN_OF = {"dns": (_dns_name,), "tls": (_SNI,), "quic": (_QUIC_SNI,), "http": (_HOSTNAME,)}
_ANY_DOMAIN = (_HOSTNAME, _SNI, _dns_name, _QUIC_SNI)


def _domain(rec: dict[str, Any]) -> str | None:
    for get in _DOMAIN_OF.get(rec.get("event_type"), _ANY_DOMAIN):  # type: ignore[arg-type]
        v = get(rec)
        if isinstance(v, str):
            return v
    return None


_ANGLE = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


def _address(v: Any) -> str | None:
    """`user@example.org`, `<user@example.org>` or `Name <user@example.org>` -> the address."""
    if not isinstance(v, str):
        return None
    m = _ANGLE.search(v)
    return m.group(1) if m else v.strip() if "@" in v else None


_MAIL_FROM, _HEADER_FROM = _get("smtp", "mail_from"), _get("email", "from")
_RECIPIENTS = (_get("smtp", "rcpt_to"), _get("email", "to"), _get("email", "cc"))


def _mail_from(rec: dict[str, Any]) -> str | None:
    """The SMTP envelope sender, else the message's From header."""
    if "smtp" not in rec and "email" not in rec:  # most events: one lookup each
        return None
    return _address(_MAIL_FROM(rec)) or _address(_HEADER_FROM(rec))


def _mail_to(rec: dict[str, Any]) -> list[str] | None:
    if "smtp" not in rec and "email" not in rec:
        return None
    out: list[str] = []
    for get in _RECIPIENTS:
        v = get(rec)
        for x in v if isinstance(v, list) else [v]:
            a = _address(x)
            if a is not None and a not in out:
                out.append(a)
    return out or None


def _dhcp_address(rec: dict[str, Any]) -> str | None:
    dhcp = rec.get("dhcp")
    if not isinstance(dhcp, dict):
        return None
    for k in ("assigned_ip", "client_ip"):
        v = dhcp.get(k)
        if isinstance(v, str) and v != "0.0.0.0":
            return v
    return None


def _fingerprint(rec: dict[str, Any]) -> str | None:
    v = _get("tls", "fingerprint")(rec)
    return v.replace(":", "") if isinstance(v, str) else None


# STIX path -> (Arrow type, extractor)
COLUMNS: dict[str, tuple[pa.DataType, Callable[[dict[str, Any]], Any]]] = {
    "network-traffic:src_ref.value": (pa.string(), _get("src_ip")),
    "network-traffic:dst_ref.value": (pa.string(), _get("dest_ip")),
    "network-traffic:src_port": (pa.int64(), _get("src_port")),
    "network-traffic:dst_port": (pa.int64(), _get("dest_port")),
    "domain-name:value": (pa.string(), _domain),
    "domain-name:resolves_to_refs[*].value": (pa.list_(pa.string()), _dns_answers),
    "url:value": (pa.string(), _url),
    f"{_HTTP_EXT}.request_method": (pa.string(), _get("http", "http_method")),
    f"{_HTTP_EXT}.request_header.'User-Agent'": (pa.string(), _get("http", "http_user_agent")),
    "x509-certificate:hashes.'SHA-1'": (pa.string(), _fingerprint),
    "x509-certificate:subject": (pa.string(), _get("tls", "subject")),
    "x509-certificate:issuer": (pa.string(), _get("tls", "issuerdn")),
    "file:name": (pa.string(), _get("fileinfo", "filename")),
    "file:hashes.MD5": (pa.string(), _get("fileinfo", "md5")),
    "file:hashes.'SHA-1'": (pa.string(), _get("fileinfo", "sha1")),
    "file:hashes.'SHA-256'": (pa.string(), _get("fileinfo", "sha256")),
    "email-message:from_ref.value": (pa.string(), _mail_from),
    "email-message:to_refs[*].value": (pa.list_(pa.string()), _mail_to),
    "ipv4-addr:value": (pa.string(), _dhcp_address),
}


_REFERRER = _get("http", "http_refer")


def read_eve(path: Path, stats: ReadStats) -> Iterator[Observations]:
    """Blocks of lines read by Arrow (`eve_arrow`), each block Arrow cannot read as Suricata
    writes it (and each line that could nest too deep) read line by line in Python."""
    cut: list[Truncated] = []  # a stream cut short: what came before it counts
    for numbers, lines in _blocks(path, cut):
        ok = eve_arrow.shallow(lines)
        fast = [i for i in range(len(lines)) if ok[i]]
        table = eve_arrow.read_block([lines[i] for i in fast]) if fast else None
        if table is not None:
            raw, ts, refs, types = eve_arrow.columns(table)
            yield _observations(raw, ts, [numbers[i] for i in fast], refs, types, path)
            rest = [i for i in range(len(lines)) if not ok[i]]
        else:
            rest = list(range(len(lines)))
        rows, nums = [], []
        for i in rest:
            try:
                rec = bounded_json.loads(lines[i])  # a line nested too deep is a bad line
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except (orjson.JSONDecodeError, ValueError) as exc:
                stats.skip(str(path), numbers[i], f"bad JSON: {exc}")
                continue
            rows.append(rec)
            nums.append(numbers[i])
        if rows:
            raw, ts, refs, types = python_columns(rows)
            yield _observations(raw, ts, nums, refs, types, path)
    if cut:
        raise cut[0]


def _blocks(path: Path, cut: list[Truncated]) -> Iterator[tuple[list[int], list[bytes]]]:
    """(line numbers, lines) of up to `CHUNK` non-blank lines; a damaged stream ends them,
    the lines before it delivered and the damage left in `cut` (as `damage.records`)."""
    numbers: list[int] = []
    lines: list[bytes] = []
    last = 0
    try:
        with open_text(path) as fh:
            for n, raw in enumerate(fh, 1):
                if raw.isspace():
                    continue
                numbers.append(n)
                lines.append(raw)
                if len(lines) >= CHUNK:
                    last = numbers[-1]
                    yield numbers, lines
                    numbers, lines = [], []
    except DAMAGED as exc:
        cut.append(Truncated(path, numbers[-1] if numbers else last, str(exc) or
                             type(exc).__name__))
    if lines:
        yield numbers, lines


def python_columns(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], Any, Any, Any]:
    """(raw columns by STIX path, time in microseconds, referrers, event types) of parsed
    EVE objects, one extractor per column (`COLUMNS`)."""
    ts = pa.array([parse_time(r["timestamp"]) if isinstance(r.get("timestamp"), str)
                   else None for r in rows], pa.int64())
    raw: dict[str, Any] = {}
    for name, (typ, get) in COLUMNS.items():
        vals = [get(r) for r in rows]
        if typ == pa.int64():
            vals = [v if isinstance(v, int) else None for v in vals]
        raw[name] = pa.array(vals, typ)
    refs = [_REFERRER(r) for r in rows]
    refs_arr = pa.array([v if isinstance(v, str) else None for v in refs], pa.string())
    return raw, ts, refs_arr, pa.array([r.get("event_type") for r in rows], pa.string())


def _observations(raw: dict[str, Any], ts: Any, lines: list[int], refs: Any, types: Any,
                  path: Path) -> Observations:
    """One batch from its raw columns (the Arrow or the Python reading of its lines): values
    in canonical form, columns no event of the batch has left out, and the referrer's URL
    and host as further values of the event (`elements`)."""
    cols: dict[str, Any] = {TS: ts, LINE: pa.array(lines, pa.int64())}
    for name, arr in raw.items():
        if arr.null_count < len(arr):
            cols[name] = canonical_column(name, arr)
    more: dict[str, Any] = {}
    if refs.null_count < len(refs):
        ref = canonical_column("url:value", refs)
        none = pa.nulls(len(lines), pa.string())
        built, more = assemble({
            "url:value": [cols.get("url:value", none), ref],
            "domain-name:value": [cols.get("domain-name:value", none), url_hosts(ref)],
        }, len(lines))
        cols.update(built)
    kinds = pc.unique(types).to_pylist()
    kind = "suricata." + ("mixed" if len(kinds) > 1 else str(kinds[0]))
    table, event = spread(pa.table(cols), more)
    return Observations(table, str(path), kind, event=event)
