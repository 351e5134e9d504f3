"""Software inventories as members have them: dpkg, CycloneDX, SPDX, pip freeze.

Every reader yields `Installed(ecosystem, name, version, source, source_version)`;
`ecosystem` is `debian`, `pypi`, or the purl type for anything else (kept, reported as
not compared). Debian vulnerability data is keyed by *source* package: give
`dpkg-query -W -f '${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\n'` for
exact matching; plain `dpkg -l` / `dpkg-query -W` output falls back to binary names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from shieldwall.errors import ShieldwallError

MAX_INVENTORY = 256 * 1024 * 1024


class InventoryError(ShieldwallError):
    """An inventory file in no format the patch check reads."""


@dataclass(frozen=True)
class Installed:
    ecosystem: str
    name: str
    version: str
    source: str = ""
    source_version: str = ""
    distro: str = ""  # e.g. "debian-12" from a purl qualifier


_PURL = re.compile(r"^pkg:(?P<type>[a-zA-Z0-9.+-]+)/(?P<path>[^@?#]+)@(?P<ver>[^?#]+)"
                   r"(?:\?(?P<q>[^#]*))?")
_PIP = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*"
                  r"(?P<ver>[^\s;#]+)")
_DPKG_L = re.compile(r"^(?P<st>[a-zA-Z][a-zA-Z ][a-zA-Z ]?)\s+(?P<name>\S+)\s+(?P<ver>\S+)\s+")


def read_inventory(path: Path) -> tuple[str, list[Installed]]:
    """(format name, packages)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InventoryError(f"{path}: {exc.strerror or exc}") from None
    if size > MAX_INVENTORY:
        raise InventoryError(f"{path}: larger than 256 MB; not an inventory")
    raw = path.read_bytes()
    head = raw[:4096].lstrip()
    if head.startswith(b"{"):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InventoryError(f"{path}: not valid JSON: {exc}") from None
        if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
            return "cyclonedx", list(_cyclonedx(doc))
        if isinstance(doc, dict) and ("spdxVersion" in doc or "SPDXID" in doc):
            return "spdx", list(_spdx(doc))
        raise InventoryError(f"{path}: JSON but neither CycloneDX nor SPDX")
    text = raw.decode("utf-8", "replace")
    lines = text.splitlines()
    if any(ln.startswith("||/") or ln.startswith("+++-") for ln in lines[:10]):
        return "dpkg-l", list(_dpkg_l(lines))
    if lines and all("\t" in ln for ln in lines[:20] if ln.strip()):
        return "dpkg-query", list(_dpkg_query(lines))
    if any(_PIP.match(ln.strip()) for ln in lines[:50]):
        return "pip-freeze", list(_pip(lines))
    raise InventoryError(f"{path}: not dpkg -l, dpkg-query -W, pip freeze, CycloneDX or SPDX "
                         "JSON")


def _split_arch(name: str) -> str:
    return name.split(":", 1)[0]


def _dpkg_l(lines: list[str]) -> Iterator[Installed]:
    for ln in lines:
        m = _DPKG_L.match(ln)
        if not m or not m.group("st").startswith("i") or m.group("st")[1:2] != "i":
            continue  # only "ii": installed; "rc" leaves config, no code
        yield Installed("debian", _split_arch(m.group("name")), m.group("ver"))


def _dpkg_query(lines: list[str]) -> Iterator[Installed]:
    for ln in lines:
        cols = ln.split("\t")
        if len(cols) < 2 or not cols[0] or not cols[1].strip():
            continue  # a package known to dpkg but not installed has no version
        name, ver = _split_arch(cols[0].strip()), cols[1].strip()
        src = cols[2].strip() if len(cols) > 2 else ""
        src = src.split(" ", 1)[0]
        srcver = cols[3].strip() if len(cols) > 3 else ""
        yield Installed("debian", name, ver, src or name, srcver or ver)


def _pip(lines: list[str]) -> Iterator[Installed]:
    for ln in lines:
        m = _PIP.match(ln.strip())
        if m:
            yield Installed("pypi", m.group("name"), m.group("ver"))


def from_purl(purl: str) -> Installed | None:
    m = _PURL.match(purl.strip())
    if not m:
        return None
    ptype = m.group("type").lower()
    path = unquote(m.group("path"))
    name = path.rsplit("/", 1)[-1]
    quals = dict(q.split("=", 1) for q in (m.group("q") or "").split("&") if "=" in q)
    ver = unquote(m.group("ver"))
    if ptype == "deb":
        src = unquote(quals.get("upstream", "")).split("@", 1)[0]
        return Installed("debian", name, ver, src or name, ver, unquote(quals.get("distro", "")))
    return Installed(ptype, name, ver)


def _cyclonedx(doc: dict[str, Any]) -> Iterator[Installed]:
    stack = list(doc.get("components") or [])
    while stack:
        c = stack.pop(0)
        if not isinstance(c, dict):
            continue
        stack.extend(c.get("components") or [])
        item = from_purl(str(c.get("purl") or ""))
        if item is None and c.get("name") and c.get("version"):
            item = Installed("unknown", str(c["name"]), str(c["version"]))
        if item is not None:
            yield item


def _spdx(doc: dict[str, Any]) -> Iterator[Installed]:
    for p in doc.get("packages") or []:
        if not isinstance(p, dict):
            continue
        purls = [r.get("referenceLocator") for r in p.get("externalRefs") or []
                 if isinstance(r, dict) and r.get("referenceType") == "purl"]
        item = from_purl(str(purls[0])) if purls else None
        if item is None and p.get("name") and p.get("versionInfo"):
            item = Installed("unknown", str(p["name"]), str(p["versionInfo"]))
        if item is not None:
            yield item
