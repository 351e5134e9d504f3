"""Vulnerability data derived from Debian's own changelogs: each CVE is fixed in the
earliest changelog entry that names it. Real, offline, and on every Debian machine."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

from debian.changelog import Changelog

_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def fixed_versions(changelog: Path, suite: str = "bookworm",
                   max_blocks: int = 400) -> tuple[str, dict[str, str]]:
    """(source package, {CVE: first version that fixed it, for `suite`}).

    A changelog lists every upload that contains an entry above that entry. A fix
    uploaded to unstable as 590-2.1 reaches bookworm as 590-2.1~deb12u1, which dpkg sorts
    *lower*; so for each CVE take the oldest upload to `suite` at or above its first
    mention, and the mentioning upload itself only when no upload to `suite` follows.
    """
    with gzip.open(changelog, "rt", errors="replace") as fh:
        ch = Changelog(fh.read(), max_blocks=max_blocks, strict=False)
    blocks = list(ch)
    earliest: dict[str, int] = {}
    for i, block in enumerate(blocks):
        for cve in set(_CVE.findall("\n".join(block.changes()))):
            earliest[cve] = i  # blocks run newest first: the last seen is the first fix
    fixed: dict[str, str] = {}
    for cve, i in earliest.items():
        ours = [j for j in range(i + 1) if suite in (blocks[j].distributions or "")]
        fixed[cve] = str(blocks[max(ours)].version if ours else blocks[i].version)
    return ch.package, fixed


def osv_records(changelog: Path, suite: str = "12") -> list[dict[str, Any]]:
    source, first = fixed_versions(changelog)  # suite 12 is bookworm
    return [{
        "schema_version": "1.6.0", "id": f"DEBCL-{source}-{cve}", "aliases": [cve],
        "modified": "2026-01-01T00:00:00Z",
        "summary": f"{cve} fixed in {source} {v} (from its Debian changelog)",
        "affected": [{"package": {"ecosystem": f"Debian:{suite}", "name": source},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "0"}, {"fixed": v}]}]}],
    } for cve, v in sorted(first.items())]


def debian_tracker(changelog: Path, suite: str = "bookworm") -> dict[str, Any]:
    source, first = fixed_versions(changelog, suite)
    return {source: {cve: {"description": f"{cve} (from the {source} changelog)",
                           "releases": {suite: {"status": "resolved", "fixed_version": v,
                                                "urgency": "medium"}}}
                     for cve, v in sorted(first.items())}}
