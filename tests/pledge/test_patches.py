"""The patch check on Debian's own changelogs and the machine's real dpkg output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from shieldwall.ingest.base import ReadOptions, Rejected, formats
from shieldwall.node import Node, member_identity
from shieldwall.pledge.inventory import read_inventory
from shieldwall.pledge.patches import VulnIndex, check, in_range
from shieldwall.store import Provenance

from .changelogs import osv_records
from .conftest import DATA, run

PLEDGE = DATA / "pledge"
OPTS = ReadOptions(producer=member_identity("estonia"))
FEEDS = [("osv", "debian-changelogs.osv.json"), ("osv", "PYSEC-2023-74.osv.json"),
         ("kev", "kev-excerpt.json"), ("debian-security", "polkit.debian-security.json")]


def _objects() -> list[dict]:
    fm = formats()
    out: list[dict] = []
    for name, f in FEEDS:
        items = list(fm[name].read(PLEDGE / f, OPTS))
        assert not [i for i in items if isinstance(i, Rejected)]
        out += items
    return out


@pytest.fixture(scope="module")
def index() -> VulnIndex:
    return VulnIndex.from_objects(_objects())


@pytest.mark.parametrize(("name", "f"), FEEDS)
def test_formats_sniff_before_stix(name: str, f: str) -> None:
    head = (PLEDGE / f).read_bytes()[:8192]
    sniffed = [n for n, fmt in formats().items() if fmt.sniff(head, PLEDGE / f)]
    assert sniffed[0] == name


def test_vulnerability_objects_carry_cves_and_ranges() -> None:
    objs = _objects()
    assert len(objs) == 165 + 1 + 1 + 3  # changelog CVEs, PYSEC, KEV, polkit tracker
    kev = next(o for o in objs if "x_shieldwall_kev" in o)
    assert kev["name"] == "CVE-2021-4034" and kev["x_shieldwall_kev"]["date_added"] == "2022-06-27"
    pysec = next(o for o in objs if o["name"] == "PYSEC-2023-74")
    assert {"source_name": "cve", "external_id": "CVE-2023-32681"} in pysec["external_references"]
    assert pysec["x_shieldwall_affected"][0]["ranges"][0]["events"] == [
        {"introduced": "2.3.0"}, {"fixed": "2.31.0"}]
    assert all(o["type"] == "vulnerability" and o["id"].startswith("vulnerability--")
               for o in objs)


def test_store_round_trip_and_reimport_is_duplicates(sqlite_store) -> None:
    objs = _objects()
    first = sqlite_store.put_many(objs, Provenance("estonia"))
    again = sqlite_store.put_many(_objects(), Provenance("estonia"))
    assert first.new == len(objs) and again.duplicates == len(objs)


def test_machines_own_packages_have_no_changelog_cves(index: VulnIndex) -> None:
    """A package's changelog never names a CVE fixed after its own version."""
    for inv in ("dpkg-query.txt", "dpkg-l.txt"):
        fmt, pkgs = read_inventory(PLEDGE / inv)
        rep = check(pkgs, index, fmt, release="bookworm")
        assert rep.packages == rep.compared > 700
        assert rep.vulnerable == []


def test_older_libpq_is_vulnerable_to_exactly_the_later_fixes(index: VulnIndex) -> None:
    fmt, pkgs = read_inventory(PLEDGE / "sbom.cdx.json")
    assert fmt == "cyclonedx"
    rep = check(pkgs, index, fmt)
    libpq = {v.cve: v for v in rep.vulnerable if v.package == "libpq5"}
    # Written down from postgresql-15's changelog: 15.15 fixed CVE-2025-12817/12818,
    # 15.16 CVE-2026-2003..2006; 15.14 itself fixed CVE-2025-8713..8715 and earlier ones.
    assert {"CVE-2025-12817", "CVE-2025-12818", "CVE-2026-2003", "CVE-2026-2006"} <= set(libpq)
    assert not {"CVE-2025-8713", "CVE-2025-8714", "CVE-2025-4207", "CVE-2024-10978",
                "CVE-2025-1094"} & set(libpq)
    assert len(libpq) == 84
    assert libpq["CVE-2025-12817"].fixed == ["15.15-0+deb12u1"]
    assert rep.not_compared == {"npm": 1}
    assert not [v for v in rep.vulnerable if v.package == "requests"]  # 2.31.0 is the fix


def test_kev_first_and_debian_tracker(index: VulnIndex) -> None:
    fmt, pkgs = read_inventory(PLEDGE / "sbom.spdx.json")
    rep = check(pkgs, index, fmt)
    assert rep.vulnerable[0].cve == "CVE-2021-4034" and rep.vulnerable[0].kev
    assert rep.vulnerable[0].fixed == ["0.120-3"]
    assert [v.kev for v in rep.vulnerable] == sorted((v.kev for v in rep.vulnerable),
                                                     reverse=True)
    assert {(v.package, v.cve) for v in rep.vulnerable} >= {("polkitd", "CVE-2021-4034"),
                                                            ("requests", "CVE-2023-32681")}


def test_pip_freeze_pep440(index: VulnIndex) -> None:
    fmt, pkgs = read_inventory(PLEDGE / "requirements-freeze.txt")
    assert fmt == "pip-freeze" and len(pkgs) == 3
    rep = check(pkgs, index, fmt)
    assert [(v.package, v.cve) for v in rep.vulnerable] == [("requests", "CVE-2023-32681")]


def test_version_rules_are_the_ecosystems() -> None:
    from debian.debian_support import Version
    from packaging.version import Version as V

    events = [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]
    assert in_range(Version("3.0.11-1~deb12u1"), events, Version)
    assert not in_range(Version("3.0.11-1"), events, Version)  # ~ sorts before the release
    assert not in_range(Version("1:2.0-1"), [{"introduced": "0"}, {"fixed": "9.9-1"}], Version)
    assert in_range(V("2.31.0rc1"), [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}], V)
    assert not in_range(V("2.3.0.dev1"), [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}], V)
    assert in_range(V("1.5"), [{"introduced": "1.0"}, {"last_affected": "1.5"}], V)
    assert not in_range(V("1.5.1"), [{"introduced": "1.0"}, {"last_affected": "1.5"}], V)


def test_release_mismatch_is_not_reported() -> None:
    idx = VulnIndex.from_objects([{
        "type": "vulnerability", "name": "CVE-2099-0001",
        "external_references": [{"source_name": "cve", "external_id": "CVE-2099-0001"}],
        "x_shieldwall_affected": [
            {"ecosystem": "Debian:12", "package": "foo", "ranges": [
                {"type": "ECOSYSTEM",
                 "events": [{"introduced": "0"}, {"fixed": "1.0-1+deb12u1"}]}]},
            {"ecosystem": "Debian:13", "package": "foo", "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0-1"}]}]}]}])
    from shieldwall.pledge.inventory import Installed

    pkg = [Installed("debian", "foo", "1.0-1+deb12u1", "foo", "1.0-1+deb12u1")]
    assert check(pkg, idx, release="bookworm").vulnerable == []
    assert len(check(pkg, idx, release="trixie").vulnerable) == 1
    assert check(pkg, idx).vulnerable == []  # releases disagree: not reported


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian machine")
def test_live_changelogs_against_live_dpkg(tmp_path: Path) -> None:
    """Re-derive from this machine: every package with a changelog is at or past its fixes."""
    docs = sorted(Path("/usr/share/doc").glob("*/changelog.Debian.gz"))[:150]
    recs = [r for p in docs for r in osv_records(p)]
    f = tmp_path / "live.osv.json"
    f.write_bytes(orjson.dumps(recs))
    idx = VulnIndex.from_objects(formats()["osv"].read(f, OPTS))  # type: ignore[arg-type]
    out = subprocess.run(["dpkg-query", "-W", "-f",
                          "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\n"],
                         capture_output=True, text=True, check=True).stdout
    inv = tmp_path / "inv.txt"
    inv.write_text(out)
    fmt, pkgs = read_inventory(inv)
    assert check(pkgs, idx, fmt, release="bookworm").vulnerable == []


def test_cli_patches(home: Path, cli) -> None:
    node = Node.load(home)
    node.store.put_many(_objects(), Provenance("estonia"))
    node.close()
    out = run(cli, "hygiene", "patches", str(PLEDGE / "sbom.spdx.json"), "--home", str(home),
              "--record")
    assert "CVE-2021-4034" in out and "known exploited" in out
    data = orjson.loads(run(cli, "hygiene", "patches", str(PLEDGE / "requirements-freeze.txt"),
                            "--json", "--home", str(home)))
    assert data["vulnerable_packages"] == 1 and data["findings"][0]["cve"] == "CVE-2023-32681"


def test_cli_patches_without_data_is_a_clear_error(home: Path, cli) -> None:
    from shieldwall.cli.main import app

    res = cli.invoke(app, ["hygiene", "patches", str(PLEDGE / "sbom.spdx.json"),
                           "--home", str(home)])
    assert res.exit_code != 0 and "no vulnerability data" in str(res.exception)
