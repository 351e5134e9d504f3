"""STIX observed-data (a bundle, or one object per line): each observed-data is one row.

SCOs are flattened into path columns (`domain-name:value`, `network-traffic:dst_ref.value`,
`file:hashes.'SHA-256'`; values in canonical form, `stix.values`) for the index; the original
observed-data, with its objects embedded, is kept for exact evaluation so nothing is lost in
the flattening.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from shieldwall.detect.readers.base import LINE, TS, Observations, ReaderError, ReadStats, open_text
from shieldwall.stix import values as canon
from shieldwall.stix.bounded_json import TooDeep, loads
from shieldwall.stix.timestamps import parse_ts


def _flatten(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def put(path: str, v: Any) -> None:
        if isinstance(v, str | int | float) and not isinstance(v, bool):
            out.setdefault(path, canon.canonical(path, v))

    referenced = {r for o in objects.values() for k, r in o.items() if k.endswith("_ref")}
    referenced |= {r for o in objects.values() for k, rs in o.items()
                   if k.endswith("_refs") and isinstance(rs, list) for r in rs}
    for key, obj in objects.items():
        root = obj.get("type", "")
        if key in referenced and root in ("ipv4-addr", "ipv6-addr", "email-addr"):
            put(f"{root}:value", obj.get("value"))
            continue
        for prop, v in obj.items():
            if prop == "type":
                continue
            if prop == "hashes" and isinstance(v, dict):
                for alg, h in v.items():
                    name = alg if alg.replace("_", "").isalnum() and "-" not in alg else f"'{alg}'"
                    put(f"{root}:hashes.{name}", str(h))
            elif prop.endswith("_ref") and isinstance(v, str) and v in objects:
                put(f"{root}:{prop}.value", objects[v].get("value"))
            elif prop.endswith("_refs") and isinstance(v, list):
                vals = [objects[r].get("value") for r in v if r in objects]
                path = f"{root}:{prop}[*].value"
                vals = [canon.canonical(path, str(x)) for x in vals if x is not None]
                if vals:
                    out.setdefault(path, vals)
            else:
                put(f"{root}:{prop}", v)
    return out


def _embedded(od: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """observed-data with `objects` embedded (2.1 `object_refs` resolved against the bundle)."""
    if "objects" in od:
        return od
    refs = od.get("object_refs") or []
    index = {ref: str(i) for i, ref in enumerate(refs)}
    objs: dict[str, dict[str, Any]] = {}
    for ref, key in index.items():
        sco = by_id.get(ref)
        if sco is None:
            continue
        o = {k: v for k, v in sco.items() if k not in ("id", "spec_version")}
        for k, v in list(o.items()):
            if k.endswith("_ref") and isinstance(v, str):
                o[k] = index.get(v, v)
            elif k.endswith("_refs") and isinstance(v, list):
                o[k] = [index.get(x, x) for x in v]
        objs[key] = o
    return dict(od) | {"objects": objs}


def read_stix(path: Path, stats: ReadStats) -> Iterator[Observations]:
    with open_text(path) as fh:
        raw = fh.read()
    try:
        doc = loads(raw)
    except TooDeep as exc:
        raise ReaderError(f"{path}: {exc}") from None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        objs = doc.get("objects") if doc.get("type") == "bundle" else [doc]
        items = [(1, o) for o in objs or []]
    else:  # one STIX object per line
        items = []
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    items.append((n, loads(line)))
                except orjson.JSONDecodeError as exc:
                    stats.skip(str(path), n, f"bad JSON: {exc}")
    if not items:
        raise ReaderError(f"{path}: no STIX objects found")
    by_id = {o["id"]: o for _, o in items if isinstance(o, dict) and "id" in o}
    ods, flats, ts, lines = [], [], [], []
    for n, o in items:
        if not isinstance(o, dict) or o.get("type") != "observed-data":
            continue
        od = _embedded(o, by_id)
        try:
            t = parse_ts(od["first_observed"])
        except (KeyError, ValueError) as exc:
            stats.skip(str(path), n, f"observed-data {o.get('id')}: {exc}")
            continue
        ods.append(od)
        flats.append(_flatten(od.get("objects") or {}))
        ts.append(t)
        lines.append(n)
    if not ods:
        return
    names = sorted({k for f in flats for k in f})
    cols: dict[str, Any] = {TS: pa.array(ts, pa.int64()), LINE: pa.array(lines, pa.int64())}
    for name in names:
        vals = [f.get(name) for f in flats]
        if name.endswith("[*].value"):
            cols[name] = pa.array(vals, pa.list_(pa.string()))
        elif all(isinstance(v, int) or v is None for v in vals):
            cols[name] = pa.array(vals, pa.int64())
        else:
            cols[name] = pa.array([None if v is None else str(v) for v in vals], pa.string())
    yield Observations(pa.table(cols), str(path), "stix", originals=ods)
