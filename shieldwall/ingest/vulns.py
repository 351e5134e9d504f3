"""Vulnerability data in the formats its publishers use: OSV, CISA KEV, Debian's tracker.

Each record becomes a STIX 2.1 `vulnerability` whose external references carry the CVE
ids, and whose custom properties carry what the patch check needs:

- `x_shieldwall_affected`: `[{ecosystem, package, ranges, versions}]`, OSV's own shape
  (`ranges` are `{type, events: [{introduced|fixed|last_affected|limit: v}]}`); Debian's
  tracker is translated into it (`introduced 0`, `fixed <fixed_version>`).
- `x_shieldwall_kev`: for a CISA Known Exploited Vulnerabilities entry, its dates,
  vendor, product and ransomware use.

Ids are derived from the publisher and its record id, so OSV's and Debian's views of one
CVE are two objects that agree on the CVE, and re-importing a feed finds the same ids.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ijson
import orjson

from shieldwall.ingest.base import (
    Format,
    ImportError_,
    Item,
    ReadOptions,
    Rejected,
    register_format,
)
from shieldwall.stix.bounded_json import DepthGuard, TooDeep, loads
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, parse_ts
from shieldwall.stix.vulnerability import AFFECTED, KEV

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_MAX_RECORD = 16 * 1024 * 1024  # one OSV record; the largest published are a few MB


def _ts(value: Any, fallback: str) -> str:
    """A STIX timestamp from an RFC 3339 / ISO date, or `fallback`."""
    if isinstance(value, str) and value:
        v = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            v += "T00:00:00Z"
        v = v.replace("+00:00", "Z")
        if not v.endswith("Z"):
            v += "Z"
        try:
            return format_ts(parse_ts(v))
        except ValueError:
            pass
    return fallback


def _file_ts(path: Path) -> str:
    """The file's modification time: re-importing the same download finds duplicates, a newer
    download of a feed without per-record dates becomes new versions."""
    mtime = datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)
    return mtime.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _base(key: str, name: str, created: str, modified: str, opts: ReadOptions) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "vulnerability", "spec_version": "2.1",
        "id": deterministic_id("vulnerability", key),
        "created": created, "modified": modified, "name": name,
        "created_by_ref": opts.producer["id"],
    }
    tlp = opts.tlp if opts.tlp is not None else TLP.CLEAR  # public advisories
    obj["object_marking_refs"] = [tlp_marking_ref(tlp)]
    return obj


def _cve_refs(ids: list[str]) -> list[dict[str, str]]:
    return [{"source_name": "cve", "external_id": c} for c in dict.fromkeys(ids) if _CVE.match(c)]


# ---- OSV -----------------------------------------------------------------------------

def osv_to_stix(rec: dict[str, Any], opts: ReadOptions, fallback_ts: str) -> dict[str, Any]:
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError("OSV record without an id")
    modified = _ts(rec.get("modified"), fallback_ts)
    created = _ts(rec.get("published"), modified)
    if parse_ts(created) > parse_ts(modified):
        created = modified
    cves = [rid] + [a for a in rec.get("aliases") or [] if isinstance(a, str)]
    obj = _base(f"osv:{rid}", rid, created, modified, opts)
    summary = rec.get("summary") or rec.get("details")
    if isinstance(summary, str) and summary:
        obj["description"] = summary[:4000]
    refs = [{"source_name": "osv", "external_id": rid}, *_cve_refs(cves)]
    for r in (rec.get("references") or [])[:20]:
        if isinstance(r, dict) and isinstance(r.get("url"), str):
            refs.append({"source_name": str(r.get("type") or "web").lower(), "url": r["url"]})
    obj["external_references"] = refs
    affected = []
    for a in rec.get("affected") or []:
        pkg = a.get("package") or {}
        if not pkg.get("name") or not pkg.get("ecosystem"):
            continue
        affected.append({
            "ecosystem": str(pkg["ecosystem"]), "package": str(pkg["name"]),
            "ranges": [{"type": r.get("type", "ECOSYSTEM"), "events": r.get("events", [])}
                       for r in a.get("ranges") or [] if isinstance(r, dict)],
            "versions": [str(v) for v in a.get("versions") or []],
        })
    obj[AFFECTED] = affected
    return obj


def read_osv(path: Path, opts: ReadOptions) -> Iterator[Item]:
    """One record, a JSON array of records, or a zip of records (OSV's `all.zip`)."""
    fallback = _file_ts(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".json"):
                    continue
                if info.file_size > _MAX_RECORD:
                    yield Rejected(info.filename, "record larger than 16 MB")
                    continue
                with zf.open(info) as fh:
                    raw = fh.read(_MAX_RECORD + 1)
                yield from _osv_records(raw, info.filename, opts, fallback)
        return
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
        fh.seek(0)
        if head.startswith(b"["):
            try:
                for n, rec in enumerate(ijson.items(DepthGuard(fh), "item", use_float=True),
                                        1):
                    yield _osv_one(rec, f"record {n}", opts, fallback)
            except (TooDeep, ijson.JSONError) as exc:
                raise ImportError_(f"{path}: {exc}") from None
            return
        yield from _osv_records(fh.read(_MAX_RECORD + 1), path.name, opts, fallback, path)


def _osv_records(raw: bytes, where: str, opts: ReadOptions, fallback: str,
                 whole: Path | None = None) -> Iterator[Item]:
    """The records of one JSON text: a file (`whole`, which a refusal names) or a
    member of a zip (refused alone)."""
    try:
        rec = loads(raw)
    except TooDeep as exc:
        if whole is not None:
            raise ImportError_(f"{whole}: {exc}") from None
        yield Rejected(where, str(exc))
        return
    except orjson.JSONDecodeError as exc:
        yield Rejected(where, f"not JSON: {exc}")
        return
    for n, r in enumerate(rec if isinstance(rec, list) else [rec], 1):
        yield _osv_one(r, f"{where} #{n}" if isinstance(rec, list) else where, opts, fallback)


def _osv_one(rec: Any, where: str, opts: ReadOptions, fallback: str) -> Item:
    if not isinstance(rec, dict):
        return Rejected(where, "not an OSV record (expected a JSON object)")
    try:
        return osv_to_stix(rec, opts, fallback)
    except (ValueError, TypeError, AttributeError) as exc:
        return Rejected(str(rec.get("id") or where), str(exc))


def _sniff_osv(head: bytes, path: Path) -> bool:
    if path.suffix == ".zip":
        return True  # only OSV ships vulnerability data as a zip of records here
    h = head[:8192]
    return b'"affected"' in h and b'"id"' in h and (b'"modified"' in h or b'"schema_version"' in h)


# ---- CISA KEV ------------------------------------------------------------------------

def read_kev(path: Path, opts: ReadOptions) -> Iterator[Item]:
    fallback = _file_ts(path)
    with path.open("rb") as fh:
        head = fh.read(4096)
        m = re.search(rb'"dateReleased"\s*:\s*"([^"]+)"', head)
        released = _ts(m.group(1).decode(), fallback) if m else fallback
        fh.seek(0)
        try:
            for n, v in enumerate(ijson.items(DepthGuard(fh), "vulnerabilities.item"), 1):
                cve = v.get("cveID") if isinstance(v, dict) else None
                if not isinstance(cve, str) or not _CVE.match(cve):
                    yield Rejected(f"entry {n}", "no valid cveID")
                    continue
                added = _ts(v.get("dateAdded"), released)
                obj = _base(f"kev:{cve}", cve, added, released, opts)
                if parse_ts(added) > parse_ts(released):
                    obj["modified"] = added
                obj["description"] = str(v.get("vulnerabilityName") or v.get("shortDescription")
                                         or cve)[:4000]
                obj["external_references"] = [
                    *_cve_refs([cve]),
                    {"source_name": "cisa-kev", "external_id": cve,
                     "url": "https://www.cisa.gov/known-exploited-vulnerabilities-catalog"},
                ]
                obj[KEV] = {k: str(v[src]) for k, src in (
                    ("date_added", "dateAdded"), ("due_date", "dueDate"),
                    ("vendor", "vendorProject"), ("product", "product"),
                    ("ransomware", "knownRansomwareCampaignUse"),
                    ("required_action", "requiredAction")) if v.get(src) is not None}
                yield obj
        except TooDeep as exc:
            raise ImportError_(f"{path}: {exc}") from None
        except ijson.JSONError as exc:
            raise ImportError_(f"{path}: KEV catalog is not valid JSON: {exc}") from None


def _sniff_kev(head: bytes, path: Path) -> bool:
    return b'"catalogVersion"' in head[:8192] or b"Known Exploited Vulnerabilities" in head[:8192]


# ---- Debian security tracker ---------------------------------------------------------

def read_debian(path: Path, opts: ReadOptions) -> Iterator[Item]:
    """`{source_package: {CVE: {description, releases: {suite: {status, fixed_version}}}}}`,
    streamed: the tracker's full file is tens of megabytes."""
    ts = _file_ts(path)
    release = str(opts.extra.get("release") or "") or None
    with path.open("rb") as fh:
        try:
            for package, cves in ijson.kvitems(DepthGuard(fh), ""):
                if not isinstance(cves, dict):
                    yield Rejected(package, "package entry is not an object")
                    continue
                for cve, data in cves.items():
                    if not isinstance(data, dict) or not _CVE.match(cve):
                        continue  # TEMP-... ids have no CVE to report against
                    item = _debian_one(package, cve, data, ts, release, opts)
                    if item is not None:
                        yield item
        except TooDeep as exc:
            raise ImportError_(f"{path}: {exc}") from None
        except ijson.JSONError as exc:
            raise ImportError_(f"{path}: Debian security data is not valid JSON: {exc}") from None


def _debian_one(package: str, cve: str, data: dict[str, Any], ts: str, release: str | None,
                opts: ReadOptions) -> dict[str, Any] | None:
    affected = []
    for suite, rel in (data.get("releases") or {}).items():
        if (release and suite != release) or not isinstance(rel, dict):
            continue
        status = rel.get("status")
        fixed = rel.get("fixed_version")
        if status == "resolved" and fixed == "0":
            continue  # never affected in this suite
        events: list[dict[str, str]] = [{"introduced": "0"}]
        if status == "resolved" and fixed:
            events.append({"fixed": str(fixed)})
        affected.append({"ecosystem": f"Debian:{suite}", "package": package,
                         "ranges": [{"type": "ECOSYSTEM", "events": events}], "versions": [],
                         "status": status, "urgency": rel.get("urgency")})
    if not affected:
        return None
    obj = _base(f"debian-security:{package}:{cve}", cve, ts, ts, opts)
    if data.get("description"):
        obj["description"] = str(data["description"])[:4000]
    obj["external_references"] = [
        *_cve_refs([cve]),
        {"source_name": "debian-security-tracker", "external_id": cve,
         "url": f"https://security-tracker.debian.org/tracker/{cve}"},
    ]
    obj[AFFECTED] = affected
    return obj


_DEB_HEAD = re.compile(rb'^\s*\{\s*"[a-z0-9][a-z0-9.+-]*"\s*:\s*\{\s*"(CVE|TEMP)-')


def _sniff_debian(head: bytes, path: Path) -> bool:
    return _DEB_HEAD.match(head[:4096]) is not None


register_format(Format("kev", "CISA Known Exploited Vulnerabilities catalog (JSON)",
                       read_kev, _sniff_kev))
register_format(Format("osv", "OSV vulnerability records (JSON record, array, or zip)",
                       read_osv, _sniff_osv))
register_format(Format("debian-security", "Debian security tracker data (JSON)",
                       read_debian, _sniff_debian))

__all__ = ["AFFECTED", "KEV", "osv_to_stix", "read_debian", "read_kev", "read_osv"]
