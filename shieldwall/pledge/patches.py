"""Installed versions with known vulnerabilities, compared by each ecosystem's own rules.

Debian versions compare with python-debian's `Version` (dpkg's algorithm: epochs, `~`
before anything, Debian revisions); PyPI versions with `packaging`'s PEP 440. A range is
OSV's event list, evaluated as the OSV specification says: walk the events in version
order, `introduced` opens, `fixed` (and anything after `last_affected`) closes.

Debian fixes land per release (bookworm's fix for a CVE is not sid's), so a Debian
comparison needs the release: from `--release`, the purl's `distro`, or else a package
is reported only when it is vulnerable under every release the data names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cmp_to_key
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440

from shieldwall.pledge.inventory import Installed

DEBIAN_SUITES = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie",
                 "14": "forky", "unstable": "sid"}


def debian_suite(text: str) -> str:
    """`Debian:12`, `debian-12`, `12`, `bookworm` -> `bookworm`."""
    t = text.lower().replace("debian", "").strip(":- ")
    t = t.split(".", 1)[0]
    return DEBIAN_SUITES.get(t, t)


def _family(ecosystem: str) -> tuple[str, str]:
    """(family, suite) of an OSV ecosystem string."""
    base, _, suite = ecosystem.partition(":")
    b = base.strip().lower()
    if b == "debian":
        return "debian", debian_suite(suite) if suite else ""
    if b == "pypi":
        return "pypi", ""
    return b, suite


def _key_debian(v: str) -> Any:
    from debian.debian_support import Version

    return Version(v)


def _key_pypi(v: str) -> Any:
    return Pep440(v)


KEYS: dict[str, Callable[[str], Any]] = {"debian": _key_debian, "pypi": _key_pypi}


def _norm_name(family: str, name: str) -> str:
    return str(canonicalize_name(name)) if family == "pypi" else name.lower()


def in_range(version: Any, events: list[dict[str, str]], key: Callable[[str], Any]) -> bool:
    """OSV's evaluation of one ECOSYSTEM range for an already parsed version."""
    parsed: list[tuple[Any, int, str]] = []
    for e in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in e:
                raw = str(e[kind])
                v = None if (kind == "introduced" and raw == "0") else key(raw)
                parsed.append((v, ("introduced", "fixed", "last_affected").index(kind), kind))

    def cmp(a: tuple[Any, int, str], b: tuple[Any, int, str]) -> int:
        if a[0] is None or b[0] is None:
            return (a[0] is not None) - (b[0] is not None)
        return -1 if a[0] < b[0] else 1 if a[0] > b[0] else a[1] - b[1]

    vulnerable = False
    for v, _, kind in sorted(parsed, key=cmp_to_key(cmp)):
        if kind == "introduced" and (v is None or version >= v):
            vulnerable = True
        elif (kind == "fixed" and version >= v) or (kind == "last_affected" and version > v):
            vulnerable = False
    return vulnerable


@dataclass
class Vulnerable:
    package: str
    installed: str
    cve: str
    kev: bool = False
    fixed: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # osv ids, debian-security
    description: str = ""


@dataclass
class PatchReport:
    inventory_format: str
    packages: int = 0
    compared: int = 0
    not_compared: dict[str, int] = field(default_factory=dict)
    unparseable: int = 0
    vulnerable: list[Vulnerable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    vuln_records: int = 0

    @property
    def vulnerable_packages(self) -> int:
        return len({v.package for v in self.vulnerable})

    @property
    def kev_packages(self) -> int:
        return len({v.package for v in self.vulnerable if v.kev})

    def score(self) -> float:
        """1 minus the share of compared packages with a known vulnerability, a package with a
        known-exploited one counting twice (floored at 0)."""
        if not self.compared:
            return 1.0
        return max(0.0, 1.0 - (self.vulnerable_packages + self.kev_packages) / self.compared)

    def summary(self) -> dict[str, Any]:
        return {"packages": self.packages, "compared": self.compared,
                "vulnerable_packages": self.vulnerable_packages,
                "kev_packages": self.kev_packages,
                "cves": len({v.cve for v in self.vulnerable}), "score": round(self.score(), 4)}

    def to_json(self) -> dict[str, Any]:
        return {"inventory_format": self.inventory_format, **self.summary(),
                "not_compared": self.not_compared, "unparseable_versions": self.unparseable,
                "vulnerability_records": self.vuln_records, "notes": self.notes,
                "findings": [v.__dict__ for v in self.vulnerable]}


@dataclass
class _Entry:
    cves: list[str]
    source: str
    affected: dict[str, Any]
    description: str


class VulnIndex:
    """Affected-package entries by (family, package name); KEV CVEs as a set."""

    def __init__(self) -> None:
        self.by_pkg: dict[tuple[str, str], list[_Entry]] = {}
        self.kev: set[str] = set()
        self.records = 0

    def add(self, obj: dict[str, Any]) -> None:
        from shieldwall.stix.vulnerability import AFFECTED, KEV

        self.records += 1
        refs = obj.get("external_references") or []
        cves = [r["external_id"] for r in refs if r.get("source_name") == "cve"
                and r.get("external_id")]
        if not cves and str(obj.get("name", "")).startswith("CVE-"):
            cves = [obj["name"]]
        if obj.get(KEV):
            self.kev.update(cves)
        src = next((r.get("external_id") for r in refs if r.get("source_name") == "osv"),
                   None) or ("debian-security" if any(
                       r.get("source_name") == "debian-security-tracker" for r in refs)
                             else obj.get("name", ""))
        for a in obj.get(AFFECTED) or []:
            family, _ = _family(str(a.get("ecosystem", "")))
            key = (family, _norm_name(family, str(a.get("package", ""))))
            self.by_pkg.setdefault(key, []).append(
                _Entry(cves or [obj.get("name", "")], str(src), a,
                       str(obj.get("description", ""))[:200]))

    @classmethod
    def from_objects(cls, objs: Iterable[dict[str, Any]]) -> VulnIndex:
        idx = cls()
        for o in objs:
            idx.add(o)
        return idx


def index_from_store(store: Any) -> VulnIndex:
    from shieldwall.store import Query

    return VulnIndex.from_objects(
        row.obj() for row in store.iter_query(Query(types=["vulnerability"],
                                                    include_revoked=False)))


def check(packages: Iterable[Installed], index: VulnIndex, inventory_format: str = "",
          release: str | None = None) -> PatchReport:
    report = PatchReport(inventory_format, vuln_records=index.records)
    suite_given = debian_suite(release) if release else ""
    found: dict[tuple[str, str], Vulnerable] = {}
    saw_debian_without_suite = False
    for pkg in packages:
        report.packages += 1
        key_fn = KEYS.get(pkg.ecosystem)
        if key_fn is None:
            report.not_compared[pkg.ecosystem] = report.not_compared.get(pkg.ecosystem, 0) + 1
            continue
        report.compared += 1
        name = pkg.source or pkg.name if pkg.ecosystem == "debian" else pkg.name
        version = pkg.source_version or pkg.version if pkg.ecosystem == "debian" else pkg.version
        entries = index.by_pkg.get((pkg.ecosystem, _norm_name(pkg.ecosystem, name)), [])
        if not entries and name != pkg.name:
            entries = index.by_pkg.get((pkg.ecosystem, _norm_name(pkg.ecosystem, pkg.name)), [])
        if not entries:
            continue
        try:
            v = key_fn(version)
        except (InvalidVersion, ValueError):
            report.unparseable += 1
            continue
        suite = suite_given or (debian_suite(pkg.distro) if pkg.distro else "")
        saw_debian_without_suite |= pkg.ecosystem == "debian" and not suite
        per_cve: dict[str, list[tuple[bool, _Entry, str]]] = {}
        for e in entries:
            _, esuite = _family(str(e.affected.get("ecosystem", "")))
            if pkg.ecosystem == "debian" and suite and esuite and esuite != suite:
                continue
            try:
                hit = _affected(v, version, e.affected, key_fn)
            except (InvalidVersion, ValueError):
                report.unparseable += 1
                continue
            for cve in e.cves:
                per_cve.setdefault(cve, []).append((hit, e, esuite))
        for cve, results in per_cve.items():
            # Without a known release, only what every release's data agrees on is reported.
            hits = [r for r in results if r[0]]
            if not hits or (pkg.ecosystem == "debian" and not suite and len(hits) < len(results)):
                continue
            k = (pkg.name, cve)
            item = found.setdefault(k, Vulnerable(pkg.name, pkg.version, cve, cve in index.kev))
            for _, e, _s in hits:
                for fx in _fixed(e.affected):
                    if fx not in item.fixed:
                        item.fixed.append(fx)
                if e.source not in item.sources:
                    item.sources.append(e.source)
                item.description = item.description or e.description
    if saw_debian_without_suite:
        report.notes.append("Debian release not given (--release): a Debian package is reported "
                            "only when every release in the data agrees it is vulnerable")
    report.vulnerable = sorted(found.values(), key=lambda x: (not x.kev, x.package, x.cve))
    return report


def _affected(v: Any, raw: str, affected: dict[str, Any], key: Callable[[str], Any]) -> bool:
    if raw in (affected.get("versions") or []):
        return True
    for r in affected.get("ranges") or []:
        if r.get("type", "ECOSYSTEM") not in ("ECOSYSTEM", "SEMVER"):
            continue
        if in_range(v, r.get("events") or [], key):
            return True
    return False


def _fixed(affected: dict[str, Any]) -> list[str]:
    return [str(e["fixed"]) for r in affected.get("ranges") or []
            for e in r.get("events") or [] if "fixed" in e]
