"""Zeek logs: TSV with `#fields` headers (parsed by pyarrow.csv, no Python loop per line) and JSON.

Each log path (conn, dns, http, ...) maps Zeek fields to STIX object paths, values in canonical
form (`base.canonical_column`); fields not mapped are dropped, logs of an unknown path keep
only the connection 4-tuple. Corrupt lines (wrong field count, bad JSON, a `ts` or a port that
is not a number) are counted and skipped with their file and line number; a gzip stream cut
short is read up to its last complete line (`damage.Truncated`). Field names written with
another `Log::default_scope_sep` (`id_orig_h`) or the usual `field_name_map` renames (`src`,
`dst`) are recognised; an address column that still maps to nothing is named in the report.
A field that holds several values (a set or vector: x509's SANs, files' tx_hosts, ssl's chain)
and fields that add values to a path already given (http's `referrer` to `url:value` and its
host to `domain-name:value`) are read whole: every value is matched (`elements`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shieldwall.detect.readers.base import (
    LINE,
    TS,
    Observations,
    ReaderError,
    ReadStats,
    canonical_column,
    is_gzip,
    open_text,
)
from shieldwall.detect.readers.damage import (
    DAMAGED,
    NotTelemetry,
    Truncated,
    UntilCut,
    note,
    records,
)
from shieldwall.detect.readers.elements import assemble, is_list, spread, url_hosts

_CONN_ID = {
    "id.orig_h": "network-traffic:src_ref.value",
    "id.resp_h": "network-traffic:dst_ref.value",
    "id.orig_p": "network-traffic:src_port",
    "id.resp_p": "network-traffic:dst_port",
}
_HTTP_EXT = "network-traffic:extensions.'http-request-ext'"

# Zeek log path -> {zeek field: STIX path}. `url:value` for http is built from host + uri.
FIELDS: dict[str, dict[str, str]] = {
    "conn": _CONN_ID | {
        "proto": "network-traffic:protocols[*]",
        "orig_bytes": "network-traffic:src_byte_count",
        "resp_bytes": "network-traffic:dst_byte_count",
        "orig_pkts": "network-traffic:src_packets",
        "resp_pkts": "network-traffic:dst_packets",
    },
    "dns": _CONN_ID | {
        "query": "domain-name:value",
        "answers": "domain-name:resolves_to_refs[*].value",
    },
    "http": _CONN_ID | {
        "host": "domain-name:value",
        "method": f"{_HTTP_EXT}.request_method",
        "uri": f"{_HTTP_EXT}.request_value",
        "user_agent": f"{_HTTP_EXT}.request_header.'User-Agent'",
        # The page that led to the request, and the Origin header (Zeek >= 4): URLs of their
        # own on the line, their hosts domain names (`_finish`).
        "referrer": "url:value",
        "origin": "url:value",
    },
    "ssl": _CONN_ID | {
        "server_name": "domain-name:value",
        "subject": "x509-certificate:subject",
        "issuer": "x509-certificate:issuer",
        "issuer_subject": "x509-certificate:issuer",
        # Zeek >= 4.2: the chain's SHA-256 fingerprints, the server's certificate first; each
        # certificate of the chain is matched (`elements`). Older logs name the chain by
        # file ids (`cert_chain_fuids`), which no indicator holds: files.log has its hashes.
        "cert_chain_fps": "x509-certificate:hashes.'SHA-256'",
        "client_cert_chain_fps": "x509-certificate:hashes.'SHA-256'",
    },
    "x509": {
        "certificate.serial": "x509-certificate:serial_number",
        "certificate.subject": "x509-certificate:subject",
        "certificate.issuer": "x509-certificate:issuer",
        "fingerprint": "x509-certificate:hashes.'SHA-256'",
        "san.dns": "domain-name:value",
        "san.ip": "ipv4-addr:value",
        "san.email": "email-addr:value",
        "san.uri": "url:value",
    },
    # Zeek < 5 logs the hosts as sets (tx_hosts, rx_hosts); later versions log `id` instead.
    "files": _CONN_ID | {
        "tx_hosts": "network-traffic:src_ref.value",
        "rx_hosts": "network-traffic:dst_ref.value",
        "md5": "file:hashes.MD5",
        "sha1": "file:hashes.'SHA-1'",
        "sha256": "file:hashes.'SHA-256'",
        "filename": "file:name",
        "mime_type": "file:mime_type",
    },
    "smtp": _CONN_ID | {
        "mailfrom": "email-message:from_ref.value",
        "rcptto": "email-message:to_refs[*].value",
        # The To and Cc headers (sets of `Name <address>`): their addresses.
        "to": "email-message:to_refs[*].value",
        "cc": "email-message:cc_refs[*].value",
        "subject": "email-message:subject",
        "x_originating_ip": "ipv4-addr:value",
        # The From header (`"Name" <user@example.org>`; the envelope's is `mailfrom`): its
        # address, found by `[email-addr:value = ...]`.
        "from": "email-addr:value",
        "reply_to": "email-addr:value",
    },
    "notice": _CONN_ID | {
        "src": "network-traffic:src_ref.value",
        "dst": "network-traffic:dst_ref.value",
        "p": "network-traffic:dst_port",
    },
    "dhcp": _CONN_ID | {
        "client_addr": "network-traffic:src_ref.value",
        "server_addr": "network-traffic:dst_ref.value",
        "assigned_ip": "ipv4-addr:value",  # Zeek < 2.6
        "assigned_addr": "ipv4-addr:value",
        "domain": "domain-name:value",
    },
    "ftp": _CONN_ID | {"data_channel.resp_h": "ipv4-addr:value"},
    "quic": _CONN_ID | {"server_name": "domain-name:value"},
    "software": {"host": "ipv4-addr:value"},
    "known_hosts": {"host": "ipv4-addr:value"},
    "known_services": {"host": "ipv4-addr:value"},
    "known_certs": {"host": "ipv4-addr:value"},
    # intel.log's `seen.indicator` is put in the column of its `seen.indicator_type` (_INTEL).
    "intel": _CONN_ID | {"seen.indicator": "", "seen.indicator_type": ""},
}
# Zeek's Intel::Type -> the STIX path of the value (hashes by their length).
_INTEL = {
    "Intel::ADDR": "ipv4-addr:value",
    "Intel::DOMAIN": "domain-name:value",
    "Intel::URL": "url:value",
    "Intel::EMAIL": "email-addr:value",
    "Intel::FILE_NAME": "file:name",
    "Intel::CERT_HASH": "x509-certificate:hashes.'SHA-1'",
}
_HASH_BY_LENGTH = {32: "file:hashes.MD5", 40: "file:hashes.'SHA-1'",
                   64: "file:hashes.'SHA-256'"}
# Keys only Zeek writes (with either scope separator): a JSON object holding one is Zeek's.
ZEEK_KEYS = frozenset({"uid", "_path", "fuid", "uids", "id.orig_h", "id_orig_h"})
# Logs a Zeek sensor writes, by file name (`conn.log`, `conn.2024-05-01-10-00-00.log.gz`):
# JSON logs whose keys say nothing of Zeek (stats, loaded_scripts, x509) are still known.
ZEEK_LOGS = frozenset(FIELDS) | {
    "capture_loss", "stats", "loaded_scripts", "packet_filter", "reporter", "weird",
    "app_stats", "broker", "cluster", "config", "print", "telemetry", "dpd", "analyzer",
    "tunnel", "ssh", "rdp", "sip", "snmp", "socks", "kerberos", "ntlm", "ntp", "radius",
    "dce_rpc", "smb_files", "smb_mapping", "mysql", "irc", "modbus", "dnp3", "pe", "ocsp",
    "syslog", "signatures", "traceroute", "conn-summary", "weird_stats", "known_modbus",
    "netcontrol", "openflow", "unified2", "x509_plus", "ldap", "ldap_search", "websocket",
}
# `Log::default_field_name_map` renames seen in deployments (Zeek's own test: src, dst).
_RENAMES = {
    "id.orig_h": ("src", "src_ip", "orig_h", "source_ip"),
    "id.resp_h": ("dst", "dst_ip", "resp_h", "dest_ip", "destination_ip"),
    "id.orig_p": ("src_port", "orig_p", "source_port"),
    "id.resp_p": ("dst_port", "resp_p", "dest_port", "destination_port"),
}
# Header fields holding `Name <address>`: the address is kept.
_HEADER_ADDRESS = {("smtp", "from"), ("smtp", "to"), ("smtp", "cc"), ("smtp", "reply_to")}
_ANGLE_ADDRESS = r"^.*<([^<>@\s]+@[^<>\s]+)>.*$"
_INT_PATHS = {"network-traffic:src_port", "network-traffic:dst_port",
              "network-traffic:src_byte_count", "network-traffic:dst_byte_count",
              "network-traffic:src_packets", "network-traffic:dst_packets"}

BLOCK = 32 << 20  # bytes per Arrow block: large blocks amortise the per-batch index probes


def fields_for(log_path: str) -> dict[str, str]:
    return FIELDS.get(log_path, _CONN_ID)


def is_zeek_log_name(name: str) -> bool:
    return name.split(".")[0] in ZEEK_LOGS


def resolve(mapping: dict[str, str], names: list[str] | set[str]) -> dict[str, str]:
    """{field as the log names it: STIX path}: `mapping`'s fields found in `names`, also when
    the log was written with another scope separator (`id_orig_h`, `id*orig_h`) or renamed by
    a usual `field_name_map` (`src`, `dst`)."""
    present = set(names)
    out = {f: p for f, p in mapping.items() if f in present}
    if len(out) == len(mapping):
        return out
    seps = {n[f.index(".")] for f in mapping if "." in f for n in present
            if len(n) == len(f) and n != f and n == f.replace(".", n[f.index(".")])}
    for f, p in mapping.items():
        if f in out:
            continue
        for alias in (*(f.replace(".", sep) for sep in seps), *_RENAMES.get(f, ())):
            if alias in present and alias not in out:
                out[alias] = p
                break
    return out


def _unmapped_addresses(h: _Header, resolved: dict[str, str]) -> list[str]:
    return [f for f, t in zip(h.fields, h.types, strict=False)
            if f not in resolved and (t == "addr" or t.endswith("[addr]"))]


# ---- TSV ---------------------------------------------------------------------------------


class _Header:
    def __init__(self, path: Path) -> None:
        self.meta: dict[str, str] = {}
        self.lines = 0
        with open_text(path) as fh:
            for raw in fh:
                if not raw.startswith(b"#"):
                    break
                self.lines += 1
                key, _, rest = raw.decode("utf-8", "replace").rstrip("\r\n").partition(
                    " " if raw.startswith(b"#separator") else "\t")
                self.meta[key[1:]] = rest
                if key == "#types":
                    break
        if "fields" not in self.meta:
            raise ReaderError(f"{path}: not a Zeek TSV log (no #fields header)")
        self.fields = self.meta["fields"].split("\t")
        self.types = self.meta.get("types", "").split("\t")
        self.path = self.meta.get("path", path.name.split(".")[0])
        self.set_sep = self.meta.get("set_separator", ",")
        self.empty = self.meta.get("empty_field", "(empty)")
        self.unset = self.meta.get("unset_field", "-")


class _NeedSerial(Exception):
    pass


def read_tsv(path: Path, stats: ReadStats) -> Iterator[Observations]:
    h = _Header(path)
    mapping = resolve(fields_for(h.path), h.fields)
    if not mapping:
        raise NotTelemetry(f"{path}: Zeek {h.path} log without address, name, URL or hash "
                           "columns")
    missing = _unmapped_addresses(h, mapping)
    if missing:
        note(stats, f"address columns not matched: {', '.join(missing)}")
    delivered = [0]  # rows delivered so far, for a re-read to resume after
    try:
        try:
            yield from _tsv_batches(path, h, mapping, stats, threads=True, skip_rows=0,
                                    delivered=delivered)
        except _NeedSerial as exc:
            # A corrupt line in a threaded parse has no line number: re-read serially from
            # the rows already delivered so every skipped line is reported with its number.
            yield from _tsv_batches(path, h, mapping, stats, threads=False,
                                    skip_rows=int(str(exc)), delivered=delivered)
    except (*DAMAGED, pa.ArrowInvalid):  # pyarrow's gzip stream ends in either
        if not is_gzip(path):
            raise
        # Cut short: read again as far as the stream goes (up to its last complete line),
        # after the rows already delivered.
        with UntilCut(path) as cut:
            yield from _tsv_batches(path, h, mapping, stats, threads=False,
                                    skip_rows=delivered[0], delivered=delivered,
                                    source=pa.PythonFile(cut, mode="r"))
        if not cut.why:
            raise
        raise Truncated(path, cut.lines, cut.why) from None


def _tsv_batches(
    path: Path, h: _Header, mapping: dict[str, str], stats: ReadStats, *, threads: bool,
    skip_rows: int, delivered: list[int], source: Any = None,
) -> Iterator[Observations]:
    wanted = [f for f in h.fields if f in mapping or f == "ts"]
    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: Any) -> str:
        if row.text.startswith("#"):
            bad.append((row.number, ""))  # a trailer or repeated header: skipped, not counted
        else:
            bad.append((row.number, f"expected {row.expected_columns} fields, "
                                    f"got {row.actual_columns}"))
        return "skip"

    reader = pacsv.open_csv(
        source if source is not None else
        pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None),
        read_options=pacsv.ReadOptions(skip_rows=h.lines, column_names=h.fields,
                                       use_threads=threads, block_size=BLOCK),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False,
                                         double_quote=False, escape_char=False,
                                         newlines_in_values=False,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types={f: pa.string() for f in wanted},
            null_values=[h.unset], strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    first_line = h.lines + 1
    good_rows = 0  # rows delivered so far (comment rows included, they are dropped below)
    consumed = 0  # physical lines consumed so far
    seen_bad = 0
    for batch in reader:
        n = batch.num_rows
        new_bad = bad[seen_bad:]
        seen_bad = len(bad)
        if any(num is None for num, _ in new_bad):
            raise _NeedSerial(str(good_rows))
        lines = np.arange(first_line + consumed, first_line + consumed + n + len(new_bad))
        if new_bad:
            bad_lines = np.array([num for num, _ in new_bad], dtype=np.int64)
            lines = np.setdiff1d(lines, bad_lines, assume_unique=True)[:n]
            for num, reason in new_bad:
                if reason and good_rows + n > skip_rows:  # not reported again on a re-read
                    stats.skip(str(path), int(num or 0), reason)
        consumed += n + len(new_bad)
        good_rows += n
        if good_rows <= skip_rows:
            continue
        table = pa.Table.from_batches([batch])
        if good_rows - n < skip_rows:
            table = table.slice(skip_rows - (good_rows - n))
            lines = lines[skip_rows - (good_rows - n):]
        obs = _normalise_tsv(table, pa.array(lines, pa.int64()), h, mapping, path, stats)
        delivered[0] = good_rows
        if obs is not None:
            yield obs


def _normalise_tsv(
    table: pa.Table, lines: pa.Array, h: _Header, mapping: dict[str, str], path: Path,
    stats: ReadStats,
) -> Observations | None:
    ts_col = table.column("ts") if "ts" in table.column_names else None
    keep = None
    if ts_col is not None:
        keep = pc.invert(pc.fill_null(pc.starts_with(ts_col, "#"), False))
        if not pc.all(keep).as_py():
            table = table.filter(keep)
            lines = lines.filter(keep)
            ts_col = table.column("ts")
    numeric = [f for f, p in mapping.items() if p in _INT_PATHS and f in table.column_names]
    if ts_col is not None:
        numeric.append("ts")
    try:
        nums = {f: pc.cast(table.column(f), pa.float64() if f == "ts" else pa.int64(),
                           safe=False) for f in numeric}
    except pa.ArrowInvalid:
        # A `ts` or port that is not a number (a damaged line): the line is counted and
        # skipped. Checked only when the cast of the whole column fails: the usual log pays
        # nothing for it.
        table, lines = _drop_bad_numbers(table, lines, numeric, path, stats)
        nums = {f: pc.cast(table.column(f), pa.float64() if f == "ts" else pa.int64(),
                           safe=False) for f in numeric}
    if table.num_rows == 0:
        return None
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    if ts_col is not None:
        cols[TS] = pc.cast(pc.multiply(nums["ts"], 1e6), pa.int64(), safe=False)
    else:
        cols[TS] = pa.nulls(table.num_rows, pa.int64())
    cols[LINE] = lines
    types = dict(zip(h.fields, h.types, strict=False))
    sources: dict[str, list[Any]] = {}  # STIX path -> its Zeek fields' columns, as mapped
    for zf, stix in mapping.items():
        if zf not in table.column_names or not stix:
            continue
        col = table.column(zf)
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()  # no copy
        ztype = types.get(zf, "string")
        if ztype.startswith(("set[", "vector[", "table[")):
            col = pc.if_else(pc.equal(col, h.empty), None, col)
            col = pc.split_pattern(col, h.set_sep)  # every value, not the first (`elements`)
        elif stix.endswith("[*]"):
            col = pc.split_pattern(col, h.set_sep)
        elif stix in _INT_PATHS:
            col = nums[zf]
        else:
            col = pc.if_else(pc.equal(col, h.empty), "", col)
        if (h.path, zf) in _HEADER_ADDRESS:
            col = _header_address(col)
        sources.setdefault(stix, []).append(canonical_column(stix, col))
    if h.path == "intel":
        _intel_columns(sources, mapping, table.column)
    table, event = _finish(cols, sources, table.num_rows, h.path)
    return Observations(table, str(path), f"zeek.{h.path}", event=event)


def _header_address(col: Any) -> Any:
    """`Name <user@example.org>` -> `user@example.org`, in a string or list column."""
    if is_list(col):
        return pa.ListArray.from_arrays(col.offsets, _header_address(col.values),
                                        mask=col.is_null())
    return pc.replace_substring_regex(col, _ANGLE_ADDRESS, r"\1")


def _finish(cols: dict[str, Any], sources: dict[str, list[Any]], n: int,
            log_path: str) -> tuple[pa.Table, Any]:
    """The batch's table from each path's sources (`elements.assemble`), its further values
    in rows of their own (`elements.spread`), and which rows are one line."""
    if log_path == "http":
        host = sources.get("domain-name:value")
        uri = sources.get(f"{_HTTP_EXT}.request_value")
        urls = sources.setdefault("url:value", [])
        # The referrer's (and Origin's) host is a domain the line names too.
        if host is not None:
            host.extend(url_hosts(u) for u in urls)
        # `url:value` joins the canonical host and the URI as logged: canonical by
        # construction; it comes first, the referrer after it.
        if host is not None and uri is not None:
            urls.insert(0, pc.binary_join_element_wise("http://", host[0], uri[0], ""))
        if not urls:
            del sources["url:value"]
    built, more = assemble(sources, n)
    cols.update(built)
    return spread(pa.table(cols), more)


_NUMBER = {"ts": r"^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$"}
_INTEGER = r"^-?[0-9]+$"


def _drop_bad_numbers(table: pa.Table, lines: pa.Array, fields: list[str], path: Path,
                      stats: ReadStats) -> tuple[pa.Table, pa.Array]:
    """The rows whose numeric fields all read as numbers (unset ones too); the others are
    counted in `stats` with their line and the first field that is not a number."""
    keep = None
    why: dict[int, str] = {}
    for f in fields:
        col = table.column(f)
        ok = pc.fill_null(pc.match_substring_regex(col, _NUMBER.get(f, _INTEGER)), True)
        for i in np.flatnonzero(~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)):
            what = "a time" if f == "ts" else "a number"
            why.setdefault(int(i), f"{f} {col[int(i)].as_py()!r} is not {what}")
        keep = ok if keep is None else pc.and_(keep, ok)
    line_numbers = lines.to_pylist()
    for i, reason in sorted(why.items()):
        stats.skip(str(path), int(line_numbers[i]), reason)
    return table.filter(keep), lines.filter(keep)


def _intel_columns(sources: dict[str, list[Any]], mapping: dict[str, str], column: Any) -> None:
    """intel.log: `seen.indicator` in the column its `seen.indicator_type` names."""
    value_f = next((f for f, p in mapping.items() if not p and f.endswith("indicator")), None)
    type_f = next((f for f, p in mapping.items() if not p and f.endswith("indicator_type")),
                  None)
    if value_f is None or type_f is None:
        return
    values, kinds = column(value_f), column(type_f)
    targets = dict(_INTEL)
    for n, p in _HASH_BY_LENGTH.items():
        targets[f"Intel::FILE_HASH/{n}"] = p
    lengths = pc.utf8_length(values)
    for kind, p in targets.items():
        name, _, n = kind.partition("/")
        hit = pc.equal(kinds, name)
        if n:
            hit = pc.and_(hit, pc.equal(lengths, int(n)))
        if not pc.any(hit).as_py():
            continue
        col = canonical_column(p, pc.if_else(hit, values, pa.scalar(None, pa.string())))
        sources.setdefault(p, []).append(col)


# ---- JSON --------------------------------------------------------------------------------

CHUNK = 65536  # lines per batch for JSON formats (parsed line by line with orjson)


def read_json(path: Path, stats: ReadStats, log_path: str | None = None) -> Iterator[Observations]:
    """Zeek JSON logs (one object per line). The log path comes from `_path` or the file name."""
    name = log_path or path.name.split(".")[0]
    mapping: dict[str, str] | None = None
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    cut: list[Truncated] = []
    for n, rec in records(path, stats, cut):
        if mapping is None:
            name = str(rec.get("_path", name))
            found = resolve(fields_for(name), set(rec))
            if not found:
                raise NotTelemetry(f"{path}: Zeek {name} log without address, name, URL or "
                                   "hash columns")
            # Zeek leaves unset fields out of a JSON line: a field the first line lacks
            # may come later (a DNS answer), under its own name or its alias.
            mapping = fields_for(name) | found
            missing = [k for k, v in rec.items() if k not in mapping and _is_address(v)]
            if missing:
                note(stats, f"address columns not matched: {', '.join(missing)}")
        rows.append(rec)
        lines.append(n)
        if len(rows) >= CHUNK:
            yield _json_table(rows, lines, mapping, path, name)
            rows, lines = [], []
    if rows and mapping is not None:
        yield _json_table(rows, lines, mapping, path, name)
    if cut:
        raise cut[0]


def _is_address(v: Any) -> bool:
    import ipaddress

    if isinstance(v, list) and v:
        v = v[0]
    if not isinstance(v, str) or not (":" in v or v[:1].isdigit()):
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _as_list(v: Any) -> list[str] | None:
    if v is None or v == []:
        return None
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _json_ts(v: Any) -> int | None:
    if isinstance(v, int | float):
        return int(v * 1_000_000)
    if isinstance(v, str):
        from shieldwall.detect.readers.jsonl import parse_time

        return parse_time(v)
    return None


def _json_table(rows: list[dict[str, Any]], lines: list[int], mapping: dict[str, str],
                path: Path, name: str) -> Observations:
    cols: dict[str, Any] = {
        TS: pa.array([_json_ts(r.get("ts")) for r in rows], pa.int64()),
        LINE: pa.array(lines, pa.int64()),
    }
    sources: dict[str, list[Any]] = {}
    for zf, stix in mapping.items():
        if not stix:
            continue
        vals = [r.get(zf) for r in rows]
        if all(v is None for v in vals):
            continue
        if stix in _INT_PATHS:
            arr = pa.array([v if isinstance(v, int) else None for v in vals], pa.int64())
        elif "[*]" in stix or any(isinstance(v, list) for v in vals):
            # a set or vector (`answers`, `san.dns`, `tx_hosts`): every value, not the first
            arr = pa.array([_as_list(v) for v in vals], pa.list_(pa.string()))
        else:
            arr = pa.array([None if v is None else str(v) for v in vals], pa.string())
        if (name, zf) in _HEADER_ADDRESS:
            arr = _header_address(arr)
        sources.setdefault(stix, []).append(canonical_column(stix, arr))
    if name == "intel":
        _intel_columns(sources, mapping, lambda f: pa.array(
            [None if r.get(f) is None else str(r.get(f)) for r in rows], pa.string()))
    table, event = _finish(cols, sources, len(rows), name)
    return Observations(table, str(path), f"zeek.{name}", event=event)
