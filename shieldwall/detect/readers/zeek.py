"""Zeek logs: TSV with `#fields` headers (parsed by pyarrow.csv, no Python loop per line) and JSON.

Each log path (conn, dns, http, ...) maps Zeek fields to STIX object paths, values in canonical
form (`base.canonical_column`); fields not mapped are dropped, logs of an unknown path keep
only the connection 4-tuple. Corrupt lines (wrong field count, bad JSON) are counted and
skipped with their file and line number.
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
    json_records,
    open_text,
)

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
    },
    "ssl": _CONN_ID | {
        "server_name": "domain-name:value",
        "subject": "x509-certificate:subject",
        "issuer": "x509-certificate:issuer",
        "issuer_subject": "x509-certificate:issuer",
    },
    "x509": {
        "certificate.serial": "x509-certificate:serial_number",
        "certificate.subject": "x509-certificate:subject",
        "certificate.issuer": "x509-certificate:issuer",
        "fingerprint": "x509-certificate:hashes.'SHA-256'",
        "san.dns": "domain-name:value",
    },
    "files": {
        "md5": "file:hashes.MD5",
        "sha1": "file:hashes.'SHA-1'",
        "sha256": "file:hashes.'SHA-256'",
        "filename": "file:name",
        "mime_type": "file:mime_type",
    },
    "smtp": _CONN_ID | {
        "mailfrom": "email-message:from_ref.value",
        "rcptto": "email-message:to_refs[*].value",
        "subject": "email-message:subject",
    },
    "notice": {
        "src": "network-traffic:src_ref.value",
        "dst": "network-traffic:dst_ref.value",
        "p": "network-traffic:dst_port",
    },
}
_INT_PATHS = {"network-traffic:src_port", "network-traffic:dst_port",
              "network-traffic:src_byte_count", "network-traffic:dst_byte_count",
              "network-traffic:src_packets", "network-traffic:dst_packets"}
# x509 `san.dns` is a list in Zeek; we keep its first name as the row's domain.
_FIRST_OF_LIST = {("x509", "san.dns")}

BLOCK = 32 << 20  # bytes per Arrow block: large blocks amortise the per-batch index probes


def fields_for(log_path: str) -> dict[str, str]:
    return FIELDS.get(log_path, _CONN_ID)


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
    try:
        yield from _tsv_batches(path, h, stats, threads=True, skip_rows=0)
    except _NeedSerial as exc:
        # A corrupt line in a threaded parse has no line number: re-read serially from the
        # rows already delivered so every skipped line is reported with its number.
        yield from _tsv_batches(path, h, stats, threads=False, skip_rows=int(str(exc)))


def _tsv_batches(
    path: Path, h: _Header, stats: ReadStats, *, threads: bool, skip_rows: int
) -> Iterator[Observations]:
    mapping = fields_for(h.path)
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
                if reason:
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
    if table.num_rows == 0:
        return None
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    if ts_col is not None:
        ts = pc.cast(ts_col, pa.float64(), safe=False)
        cols[TS] = pc.cast(pc.multiply(ts, 1e6), pa.int64(), safe=False)
    else:
        cols[TS] = pa.nulls(table.num_rows, pa.int64())
    cols[LINE] = lines
    types = dict(zip(h.fields, h.types, strict=False))
    for zf, stix in mapping.items():
        if zf not in table.column_names:
            continue
        col = table.column(zf)
        ztype = types.get(zf, "string")
        if ztype.startswith(("set[", "vector[", "table[")):
            col = pc.if_else(pc.equal(col, h.empty), None, col)
            col = pc.split_pattern(col, h.set_sep)
            if (h.path, zf) in _FIRST_OF_LIST or "[*]" not in stix:
                col = pc.list_element(col, 0)
        elif stix.endswith("[*]"):
            col = pc.split_pattern(col, h.set_sep)
        elif stix in _INT_PATHS:
            col = pc.cast(col, pa.int64(), safe=False)
        else:
            col = pc.if_else(pc.equal(col, h.empty), "", col)
        col = canonical_column(stix, col)
        if stix in cols:  # two Zeek fields for one path (ssl issuer / issuer_subject)
            cols[stix] = pc.coalesce(cols[stix], col)
        else:
            cols[stix] = col
    # `url:value` joins the canonical host and the URI as logged: canonical by construction.
    if h.path == "http" and "domain-name:value" in cols:
        uri = cols.get(f"{_HTTP_EXT}.request_value")
        if uri is not None:
            cols["url:value"] = pc.binary_join_element_wise(
                "http://", cols["domain-name:value"], uri, "")
    return Observations(pa.table(cols), str(path), f"zeek.{h.path}")


# ---- JSON --------------------------------------------------------------------------------

CHUNK = 65536  # lines per batch for JSON formats (parsed line by line with orjson)


def read_json(path: Path, stats: ReadStats, log_path: str | None = None) -> Iterator[Observations]:
    """Zeek JSON logs (one object per line). The log path comes from `_path` or the file name."""
    name = log_path or path.name.split(".")[0]
    mapping: dict[str, str] | None = None
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for n, rec in json_records(path, stats):
        if mapping is None:
            name = rec.get("_path", name)
            mapping = fields_for(name)
        rows.append(rec)
        lines.append(n)
        if len(rows) >= CHUNK:
            yield _json_table(rows, lines, mapping, path, name)
            rows, lines = [], []
    if rows and mapping is not None:
        yield _json_table(rows, lines, mapping, path, name)


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
    for zf, stix in mapping.items():
        vals = [r.get(zf) for r in rows]
        if all(v is None for v in vals):
            continue
        if stix.endswith("[*]"):
            vals = [v if isinstance(v, list) or v is None else [v] for v in vals]
            arr = pa.array([[str(x) for x in v] if v else None for v in vals],
                           pa.list_(pa.string()))
        elif stix in _INT_PATHS:
            arr = pa.array([v if isinstance(v, int) else None for v in vals], pa.int64())
        else:
            vals = [v[0] if isinstance(v, list) and v else v for v in vals]
            arr = pa.array([None if v is None else str(v) for v in vals], pa.string())
        arr = canonical_column(stix, arr)
        cols[stix] = pc.coalesce(cols[stix], arr) if stix in cols else arr
    if name == "http" and "domain-name:value" in cols and f"{_HTTP_EXT}.request_value" in cols:
        cols["url:value"] = pc.binary_join_element_wise(
            "http://", cols["domain-name:value"], cols[f"{_HTTP_EXT}.request_value"], "")
    return Observations(pa.table(cols), str(path), f"zeek.{name}")
