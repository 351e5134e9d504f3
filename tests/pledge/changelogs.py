"""Vulnerability data derived from Debian's own changelogs: each CVE is fixed in the
earliest changelog entry that names it. Real, offline, and on every Debian machine."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

from debian.changelog import Changelog
from debian.debian_support import Version

_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def fixed_versions(changelog: Path, max_blocks: int = 400) -> tuple[str, dict[str, str]]:
    """(source package, {CVE: first version that fixed it})."""
    with gzip.open(changelog, "rt", errors="replace") as fh:
        ch = Changelog(fh.read(), max_blocks=max_blocks, strict=False)
    first: dict[str, str] = {}
    for block in ch:
        for cve in set(_CVE.findall("\n".join(block.changes()))):
            v = str(block.version)
            if cve not in first or Version(v) < Version(first[cve]):
                first[cve] = v
    return ch.package, first


def osv_records(changelog: Path, suite: str = "12") -> list[dict[str, Any]]:
    source, first = fixed_versions(changelog)
    return [{
        "schema_version": "1.6.0", "id": f"DEBCL-{source}-{cve}", "aliases": [cve],
        "modified": "2026-01-01T00:00:00Z",
        "summary": f"{cve} fixed in {source} {v} (from its Debian changelog)",
        "affected": [{"package": {"ecosystem": f"Debian:{suite}", "name": source},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "0"}, {"fixed": v}]}]}],
    } for cve, v in sorted(first.items())]


def debian_tracker(changelog: Path, suite: str = "bookworm") -> dict[str, Any]:
    source, first = fixed_versions(changelog)
    return {source: {cve: {"description": f"{cve} (from the {source} changelog)",
                           "releases": {suite: {"status": "resolved", "fixed_version": v,
                                                "urgency": "medium"}}}
                     for cve, v in sorted(first.items())}}
