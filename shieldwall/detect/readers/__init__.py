"""Readers: one module per telemetry format, all yielding `Observations` (see `base`).

`read(path)` detects the format from the file's first bytes unless `fmt` forces one:
`zeek` (TSV with `#fields`, or JSON with Zeek's `ts`/`uid`), `suricata` (EVE JSON),
`stix` (a bundle or observed-data), `jsonl` (needs a field mapping).
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
    head_bytes,
    iter_files,
)

FORMATS = ("zeek", "suricata", "stix", "jsonl")

__all__ = ["FORMATS", "LINE", "TS", "BadLine", "Observations", "ReadStats", "ReaderError",
           "detect_format", "iter_files", "read"]


def detect_format(path: Path) -> str:
    """`zeek-tsv`, `zeek-json`, `suricata`, `stix` or `jsonl`, from the first bytes."""
    head = head_bytes(path, 16384)
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
        if "ts" in rec and ("uid" in rec or "_path" in rec or "id.orig_h" in rec
                            or "fuid" in rec):
            return "zeek-json"
        return "jsonl"
    if text.startswith(b"{") and b'"type"' in head and b'"bundle"' in head:
        return "stix"  # a pretty-printed bundle
    raise ReaderError(
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
            raise ReaderError(f"{path}: JSON lines need a field mapping (--mapping FILE)")
        it = jsonl.read_jsonl(path, stats, mapping)
    else:
        raise ReaderError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for obs in it:
        stats.events += len(obs)
        yield obs
