"""Suricata EVE lines read by Arrow's JSON parser, the fields Shieldwall reads only.

The Python reader (`suricata.python_columns`) parses each line with orjson and walks it with
one extractor per column: ~30,000 events/s, most of it in the walks. Here a block of lines is
parsed by `pyarrow.json` with an explicit schema naming only the fields `suricata.COLUMNS`
reads (every other field is skipped by the parser), and each column is computed over the
whole block with Arrow's kernels, giving the same values as the extractors.

Bounded as the Python path is: a block is at most `suricata.CHUNK` lines, parsed from memory
in one Arrow block; a line with more than `bounded_json.MAX_DEPTH` opening brackets (the only
lines that could nest deeper than the limit) is never given to this parser; and a block Arrow
cannot read as the schema says (a bad line, a field of another type than Suricata writes,
a line that is not an object) returns None, and the caller reads that block line by line in
Python, which counts the bad lines with their numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from shieldwall.detect.readers.elements import lists_from_flat
from shieldwall.stix.bounded_json import MAX_DEPTH

_S = pa.string()
_NAMES = pa.list_(pa.struct([("rrname", _S)]))
# DNS v2 `grouped` answers: the record types whose values are strings.
GROUPED = ("A", "AAAA", "CNAME", "PTR", "MX", "NS", "TXT", "SPF", "DNAME", "NULL")
SCHEMA = pa.schema([
    ("timestamp", _S), ("event_type", _S), ("src_ip", _S), ("dest_ip", _S),
    ("src_port", pa.int64()), ("dest_port", pa.int64()),
    ("http", pa.struct([("hostname", _S), ("url", _S), ("http_method", _S),
                        ("http_user_agent", _S), ("http_refer", _S)])),
    ("tls", pa.struct([("sni", _S), ("fingerprint", _S), ("subject", _S), ("issuerdn", _S)])),
    ("quic", pa.struct([("sni", _S)])),
    ("fileinfo", pa.struct([("filename", _S), ("md5", _S), ("sha1", _S), ("sha256", _S)])),
    ("dns", pa.struct([("type", _S), ("rrname", _S), ("rdata", _S), ("queries", _NAMES),
                       ("query", _NAMES), ("answers", pa.list_(pa.struct([("rdata", _S)]))),
                       ("grouped", pa.struct([(k, pa.list_(_S)) for k in GROUPED]))])),
    ("smtp", pa.struct([("mail_from", _S), ("rcpt_to", pa.list_(_S))])),
    ("email", pa.struct([("from", _S), ("to", pa.list_(_S)), ("cc", pa.list_(_S))])),
    ("dhcp", pa.struct([("assigned_ip", _S), ("client_ip", _S)])),
])
_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore",
                         newlines_in_values=False)
_ANGLE = r"<(?P<a>[^<>@\s]+@[^<>\s]+)>"
_HTTP_EXT = "network-traffic:extensions.'http-request-ext'"
_NULL = pa.scalar(None, _S)


def shallow(lines: list[bytes]) -> list[bool]:
    """Which lines hold at most `MAX_DEPTH` opening brackets: the lines that cannot nest
    deeper than the limit, whatever their strings hold (two byte counts a line, ~0.3 us)."""
    return [ln.count(b"{") + ln.count(b"[") <= MAX_DEPTH for ln in lines]


def read_block(lines: list[bytes]) -> pa.Table | None:
    """The schema's fields of each line (one row a line), or None when Arrow cannot read
    every line as the schema says."""
    block = b"".join(lines)  # each line still ends in its newline (the last one may not)
    if not block.endswith(b"\n"):
        block += b"\n"
    try:
        table = pj.read_json(pa.BufferReader(block), read_options=pj.ReadOptions(
            use_threads=False, block_size=len(block) + 1), parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(lines):
        return None
    return table.combine_chunks()


def _field(table: pa.Table, *names: str) -> Any:
    col: Any = table.column(names[0]).combine_chunks()
    for name in names[1:]:
        col = pc.struct_field(col, name)
    return col


def _first_name(names: Any) -> Any:
    """`rrname` of each list's first element (null for an empty or null list)."""
    n = len(names)
    head = pc.list_slice(names, 0, 1)
    parents = pc.list_parent_indices(head).to_numpy()
    values = pc.struct_field(pc.list_flatten(head), "rrname")
    at = np.full(n, -1, dtype=np.int64)
    at[parents] = np.arange(len(parents))
    return values.take(pa.array(at, mask=at < 0))


def _flat(lists: Any) -> tuple[Any, Any]:
    return pc.list_parent_indices(lists).to_numpy(), pc.list_flatten(lists)


def _address(v: Any) -> Any:
    """As `suricata._address`: the address in angle brackets, else the text stripped when it
    holds an `@`."""
    found = pc.extract_regex(v, _ANGLE)
    angle = pc.if_else(found.is_valid(), pc.struct_field(found, [0]), _NULL)
    plain = pc.if_else(pc.fill_null(pc.match_substring(v, "@"), False),
                       pc.utf8_trim_whitespace(v), _NULL)
    return pc.coalesce(angle, plain)


def columns(table: pa.Table) -> tuple[dict[str, Any], Any, Any, Any]:
    """(raw columns by STIX path, time in microseconds, referrers, event types): what
    `suricata.python_columns` gives for the same lines."""
    n = table.num_rows
    f = lambda *names: _field(table, *names)  # noqa: E731
    et = pc.fill_null(f("event_type"), "")
    try:
        ts = pc.cast(pc.cast(f("timestamp"), pa.timestamp("us", tz="UTC")), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        from shieldwall.detect.readers.jsonl import parse_time

        ts = pa.array([None if v is None else parse_time(v)
                       for v in f("timestamp").to_pylist()], pa.int64())
    host, sni, qsni = f("http", "hostname"), f("tls", "sni"), f("quic", "sni")
    dns_name = pc.coalesce(f("dns", "rrname"), _first_name(f("dns", "queries")),
                           _first_name(f("dns", "query")))
    domain = pc.case_when(
        pc.make_struct(pc.equal(et, "dns"), pc.equal(et, "tls"), pc.equal(et, "quic"),
                       pc.equal(et, "http")),
        dns_name, sni, qsni, host, pc.coalesce(host, sni, dns_name, qsni))
    # DNS answers: `answers`, then `grouped`, then a v1 answer's `rdata`; each once.
    p, v = _flat(f("dns", "answers"))
    parts = [(p, pc.struct_field(v, "rdata"))]
    parts += [_flat(f("dns", "grouped", k)) for k in GROUPED]
    v1 = pc.and_(pc.fill_null(pc.equal(f("dns", "type"), "answer"), False),
                 f("dns", "rdata").is_valid())
    pos = np.flatnonzero(np.asarray(v1.to_numpy(zero_copy_only=False), dtype=bool))
    parts.append((pos, f("dns", "rdata").take(pa.array(pos, pa.int64()))))
    answers = lists_from_flat(parts, n, unique=True)
    url, raw_host = f("http", "url"), host
    both = pc.and_(raw_host.is_valid(), url.is_valid())
    full = pc.if_else(pc.fill_null(pc.match_substring(url, "://"), False), url,
                      pc.binary_join_element_wise("http://", raw_host, url, ""))
    mail = pc.coalesce(_address(f("smtp", "mail_from")), _address(f("email", "from")))
    rcpt = [_flat(f("smtp", "rcpt_to")), _flat(f("email", "to")), _flat(f("email", "cc"))]
    rcpt = [(p, _address(v)) for p, v in rcpt]
    dhcp = [f("dhcp", k) for k in ("assigned_ip", "client_ip")]
    dhcp = [pc.if_else(pc.fill_null(pc.not_equal(d, "0.0.0.0"), False), d, _NULL) for d in dhcp]
    fp = f("tls", "fingerprint")
    raw = {
        "network-traffic:src_ref.value": f("src_ip"),
        "network-traffic:dst_ref.value": f("dest_ip"),
        "network-traffic:src_port": f("src_port"),
        "network-traffic:dst_port": f("dest_port"),
        "domain-name:value": domain,
        "domain-name:resolves_to_refs[*].value": answers,
        "url:value": pc.if_else(both, full, _NULL),
        f"{_HTTP_EXT}.request_method": f("http", "http_method"),
        f"{_HTTP_EXT}.request_header.'User-Agent'": f("http", "http_user_agent"),
        "x509-certificate:hashes.'SHA-1'": pc.replace_substring(fp, ":", ""),
        "x509-certificate:subject": f("tls", "subject"),
        "x509-certificate:issuer": f("tls", "issuerdn"),
        "file:name": f("fileinfo", "filename"),
        "file:hashes.MD5": f("fileinfo", "md5"),
        "file:hashes.'SHA-1'": f("fileinfo", "sha1"),
        "file:hashes.'SHA-256'": f("fileinfo", "sha256"),
        "email-message:from_ref.value": mail,
        "email-message:to_refs[*].value": lists_from_flat(rcpt, n, unique=True),
        "ipv4-addr:value": pc.coalesce(*dhcp),
    }
    return raw, ts, f("http", "http_refer"), f("event_type")
