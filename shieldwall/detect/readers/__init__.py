"""Readers: one module per telemetry format, all yielding `Observations` (see `base`).

`read(path)` detects the format from the file's first bytes unless `fmt` forces one:
`zeek` (TSV with `#fields`, or JSON with Zeek's `ts`/`uid`), `suricata` (EVE JSON),
`stix` (a bundle or observed-data), `jsonl` (needs a field mapping). A file that is none of
these (a CSV, a binary file, a Zeek log without address, name, URL or hash columns, JSON lines
without a mapping) raises `NotTelemetry`: a hunt skips it with that note.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from shieldwall.detect.readers.base import (
    LINE,
    TS,
    BadLine,
    Observations,
    ReaderError,
    ReadStats,
    iter_files,
)

FORMATS = ("zeek", "suricata", "stix", "jsonl")

__all__ = ["FORMATS", "LINE", "TS", "BadLine", "Observations", "ReadStats", "ReaderError",
           "detect_format", "iter_files", "read"]


def detect_format(path: Path) -> str:
    """`zeek-tsv`, `zeek-json`, `suricata`, `stix` or `jsonl`, from the first bytes."""
    from shieldwall.detect.readers.damage import NotTelemetry, readable_head
    from shieldwall.detect.readers.zeek import ZEEK_KEYS, is_zeek_log_name

    try:
        head = readable_head(path, 16384)
    except ReaderError as exc:  # binary
        raise NotTelemetry(str(exc)) from None
    text = head.lstrip()
    if text.startswith(b"#separator") or text.startswith(b"#fields"):
        return "zeek-tsv"
    first = text.split(b"\n", 1)[0]
    try:
        rec: Any = orjson.loads(first)
    except orjson.JSONDecodeError:
        rec = None
    if isinstance(rec, dict):
        if rec.get("type") == "bundle" or str(rec.get("id", "")).startswith("observed-data--"):
            return "stix"
        if "event_type" in rec and ("src_ip" in rec or "timestamp" in rec):
            return "suricata"
        # Zeek's own keys (`id_orig_h` with `Log::default_scope_sep = "_"`), or a Zeek log's
        # name: stats.log, loaded_scripts.log (no `ts`) and x509.log have none of those keys.
        if ("ts" in rec and not ZEEK_KEYS.isdisjoint(rec)) or is_zeek_log_name(path.name):
            return "zeek-json"
        return "jsonl"
    if text.startswith(b"{") and b'"type"' in head and b'"bundle"' in head:
        return "stix"  # a pretty-printed bundle
    raise NotTelemetry(
        f"{path}: format not recognised (not Zeek TSV/JSON, Suricata EVE, STIX or JSON lines); "
        "use --format"
    )


def read(
    path: Path, stats: ReadStats, fmt: str | None = None, mapping: dict[str, Any] | None = None
) -> Iterator[Observations]:
    from shieldwall.detect.readers import jsonl, stix, suricata, zeek

    kind = detect_format(path) if fmt is None or fmt == "zeek" else fmt
    if fmt == "zeek" and kind not in ("zeek-tsv", "zeek-json"):
        kind = "zeek-json"
    stats.files += 1
    if kind == "zeek-tsv":
        it = zeek.read_tsv(path, stats)
    elif kind == "zeek-json":
        it = zeek.read_json(path, stats)
    elif kind == "suricata":
        it = suricata.read_eve(path, stats)
    elif kind == "stix":
        it = stix.read_stix(path, stats)
    elif kind == "jsonl":
        if mapping is None:
            from shieldwall.detect.readers.damage import NotTelemetry

            raise NotTelemetry(f"{path}: JSON lines need a field mapping (--mapping FILE)")
        it = jsonl.read_jsonl(path, stats, mapping)
    else:
        raise ReaderError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for obs in it:
        stats.events += obs.events
        yield obs
