"""Sensor exports: Zeek Intel, Suricata rules and datasets, RPZ and CSV, from the store.

Each output is read back the way its consumer reads it: the Zeek file as Zeek's ASCII input
reader does (tab-separated, `#fields`, no empty field), every Suricata rule by
suricata-update's parser and suricata-check, the RPZ zone by dnspython as a zone file.
"""

from __future__ import annotations

import base64
import csv
import logging
from pathlib import Path
from typing import Any

import pytest

from shieldwall.outputs.sensors.export import Exporter, Targets
from shieldwall.outputs.sensors.sids import sid_map
from shieldwall.policy.model import Member
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator, sid

NOW = 1_750_000_000_000_000  # 2025-06-15


def ind(pattern: str, oid: str, **kw: Any) -> dict[str, Any]:
    obj = indicator(oid=oid, **kw)
    obj["pattern"] = pattern
    obj["name"] = kw.pop("name", None) or "test"
    return obj


INDICATORS = [
    ind("[ipv4-addr:value = '198.51.100.7']", sid("indicator", "1")),
    ind("[ipv6-addr:value = '2001:DB8::1']", sid("indicator", "2")),
    ind("[domain-name:value = 'Bücher.EXAMPLE']", sid("indicator", "3")),
    ind("[url:value = 'http://evil.example/a?b=1']", sid("indicator", "4")),
    ind("[file:hashes.'SHA-256' = '" + "AB" * 32 + "']", sid("indicator", "5")),
    ind("[email-addr:value = 'phish@evil.example']", sid("indicator", "6")),
    ind("[x509-certificate:hashes.'SHA-1' = '" + "0f" * 20 + "']", sid("indicator", "7")),
    ind("[ipv4-addr:value = '203.0.113.0/24']", sid("indicator", "8")),
    ind("[domain-name:value LIKE '%.bad.example']", sid("indicator", "9")),
    ind("[network-traffic:dst_ref.value = '192.0.2.1' AND network-traffic:dst_port = 443 "
        "AND network-traffic:protocols[*] = 'tcp']", sid("indicator", "a")),
    ind("[domain-name:value = 'a.example' OR domain-name:value = 'b.example']",
        sid("indicator", "b")),
    ind("[file:hashes.MD5 = '" + "c" * 32 + "']", sid("indicator", "c")),
]


def export(store: Store, tmp: Path, **kw: Any) -> tuple[Exporter, Any]:
    targets = Targets(tmp / "zeek", tmp / "suricata", tmp / "shieldwall.rpz", tmp / "ioc.csv")
    ex = Exporter(store, targets, **kw)
    return ex, ex.run(NOW)


def zeek_records(path: Path) -> list[dict[str, str]]:
    """The intel file as Zeek's ASCII input reader takes it: `#fields` names the columns,
    every line has exactly that many tab-separated fields, none empty."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    header = lines[0].split("\t")
    assert header[0] == "#fields"
    fields = header[1:]
    out = []
    for line in lines[1:-1]:
        if line.startswith("#"):
            continue
        values = line.split("\t")
        assert len(values) == len(fields), line
        assert all(v != "" for v in values), line
        out.append(dict(zip(fields, values, strict=True)))
    return out


def parse_rules(path: Path) -> list[dict[str, Any]]:
    import suricata.update.rule as surrule

    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        rule = surrule.parse(line)
        assert rule is not None, line
        rules.append(rule)
    return rules


def suricata_check_issues(path: Path) -> list[str]:
    """Issues suricata-check raises that say a rule is wrong (not style advice)."""
    logging.getLogger("suricata_check").setLevel(logging.CRITICAL)
    from suricata_check import analyze_rule
    from suricata_check.utils.rule import parse

    bad = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        report = analyze_rule(parse(line))
        for issue in report.issues:
            if issue.code.startswith(("M", "E")) or issue.code in ("S301",):
                bad.append(f"{issue.code} {line}")
    return bad


def test_every_output_holds_what_each_sensor_matches(store: Store, tmp_path: Path) -> None:
    store.put_many(INDICATORS, Provenance("estonia"))
    _ex, report = export(store, tmp_path)

    recs = zeek_records(tmp_path / "zeek" / "shieldwall.intel")
    by_source = {r["meta.source"]: r for r in recs}
    assert by_source[sid("indicator", "1")]["indicator_type"] == "Intel::ADDR"
    assert by_source[sid("indicator", "2")]["indicator"] == "2001:db8::1"
    assert by_source[sid("indicator", "3")]["indicator"] == "xn--bcher-kva.example"
    assert by_source[sid("indicator", "4")]["indicator"] == "evil.example/a?b=1"
    assert by_source[sid("indicator", "5")]["indicator"] == "ab" * 32
    assert by_source[sid("indicator", "5")]["indicator_type"] == "Intel::FILE_HASH"
    assert by_source[sid("indicator", "6")]["indicator_type"] == "Intel::EMAIL"
    assert by_source[sid("indicator", "7")]["indicator_type"] == "Intel::CERT_HASH"
    assert by_source[sid("indicator", "8")]["indicator_type"] == "Intel::SUBNET"
    assert by_source[sid("indicator", "1")]["meta.desc"] == "test (TLP:GREEN)"
    assert by_source[sid("indicator", "1")]["meta.url"] == "-"
    assert sid("indicator", "9") not in by_source  # a suffix: Zeek matches whole names
    skipped = (tmp_path / "zeek" / "skipped.tsv").read_text()
    assert f"{sid('indicator', '9')}\ta domain suffix" in skipped
    assert f"{sid('indicator', 'b')}\tOrBoolean: no faithful sensor form" in skipped

    sdir = tmp_path / "suricata"
    rules = parse_rules(sdir / "shieldwall.rules")
    assert suricata_check_issues(sdir / "shieldwall.rules") == []
    by_id = {m.split()[1]: r for r in rules for m in r["metadata"]
             if m.startswith("shieldwall_id ")}
    assert set(by_id) == {sid("indicator", d) for d in "489a"}
    url = by_id[sid("indicator", "4")]
    assert url["proto"] == "http" and url["dest_port"] == "80"
    assert 'content:"evil.example"; bsize:12; http.uri.raw; content:"/a?b=1"; bsize:6;' in \
        url["raw"]
    assert by_id[sid("indicator", "8")]["source_addr"] == "203.0.113.0/24"
    flow = by_id[sid("indicator", "a")]
    assert (flow["proto"], flow["dest_addr"], flow["dest_port"]) == ("tcp", "192.0.2.1", "443")
    assert 'content:".bad.example"; endswith;' in by_id[sid("indicator", "9")]["raw"]
    assert all(r["rev"] == 1 for r in by_id.values())
    assert "tlp green" in url["metadata"]
    assert (sdir / "shieldwall-ipv4.lst").read_text() == "198.51.100.7\n"
    assert (sdir / "shieldwall-ipv6.lst").read_text() == "2001:db8::1\n"
    assert [base64.b64decode(x).decode() for x in
            (sdir / "shieldwall-domains.lst").read_text().split()] == ["xn--bcher-kva.example"]
    assert base64.b64decode((sdir / "shieldwall-tls-fingerprints.lst").read_text()).decode() \
        == ":".join(["0f"] * 20)
    assert (sdir / "shieldwall-sha256.txt").read_text() == "ab" * 32 + "\n"
    assert (sdir / "shieldwall-md5.txt").read_text() == "c" * 32 + "\n"
    assert "an email address: Suricata 7 has no keyword" in (sdir / "skipped.tsv").read_text()
    # every dataset and hash list a rule loads is written beside the rules
    for r in rules:
        for word in ("load ", "filemd5:", "filesha1:", "filesha256:"):
            if word in r["raw"]:
                name = r["raw"].split(word, 1)[1].split(";")[0].split(",")[0]
                assert (sdir / name).is_file(), name

    import dns.zone

    zone = dns.zone.from_text((tmp_path / "shieldwall.rpz").read_text(),
                              origin="rpz.shieldwall.", relativize=True)
    names = {str(n) for n, node in zone.nodes.items() if node.get_rdataset(1, 5)}  # IN CNAME
    assert names == {"xn--bcher-kva.example", "*.bad.example"}

    with open(tmp_path / "ioc.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["kind"] for r in rows} >= {"ip", "domain", "url", "sha256", "cidr",
                                         "domain-suffix", "email"}
    assert report.exported["zeek"] == 9 and report.skipped["zeek"] == 3


def test_output_is_deterministic_and_rewritten_only_on_change(store: Store,
                                                             tmp_path: Path) -> None:
    store.put_many(INDICATORS, Provenance("estonia"))
    _, first = export(store, tmp_path / "a")
    ex, _ = export(store, tmp_path / "b")
    for f in first.written:
        twin = tmp_path / "b" / f.relative_to(tmp_path / "a")
        assert f.read_bytes() == twin.read_bytes(), f
    assert ex.run(NOW).written == []  # nothing changed, nothing rewritten
    # a new version of the URL indicator: its rule keeps its sid and gets rev 2
    sids_before = sid_map(store)
    store.put(ind("[url:value = 'http://evil.example/a?b=2']", sid("indicator", "4"),
                  modified="2024-02-01T00:00:00.000Z"), Provenance("estonia"))
    report = ex.run(NOW)
    assert {p.name for p in report.written} == {"shieldwall.rules", "shieldwall.intel", "ioc.csv"}
    rules = parse_rules(tmp_path / "b" / "suricata" / "shieldwall.rules")
    url = next(r for r in rules if f"shieldwall_id {sid('indicator', '4')}" in r["metadata"])
    assert url["rev"] == 2 and sid_map(store) == sids_before
    assert "/a?b=2" in url["raw"]


def test_revoked_expired_warninglisted_and_future_indicators_leave(store: Store,
                                                                  tmp_path: Path) -> None:
    store.put_many(INDICATORS[:3], Provenance("estonia"))
    ex, _ = export(store, tmp_path)
    revoked = dict(INDICATORS[0], modified="2024-03-01T00:00:00.000Z", revoked=True)
    store.put(revoked, Provenance("estonia"))
    store.tag([(sid("indicator", "2"), "warninglist", "test list")])
    store.put(ind("[domain-name:value = 'later.example']", sid("indicator", "d"),
                  valid_from="2025-06-16T00:00:00Z"), Provenance("estonia"))
    store.put(ind("[domain-name:value = 'gone.example']", sid("indicator", "e"),
                  valid_until="2025-06-14T00:00:00Z"), Provenance("estonia"))
    ex.run(NOW)
    values = {r["indicator"] for r in zeek_records(tmp_path / "zeek" / "shieldwall.intel")}
    assert values == {"xn--bcher-kva.example"}
    ex.run(NOW + 2 * 86_400_000_000)  # a day later the future indicator is valid
    values = {r["indicator"] for r in zeek_records(tmp_path / "zeek" / "shieldwall.intel")}
    assert values == {"xn--bcher-kva.example", "later.example"}


def test_only_what_the_audience_may_read_leaves(store: Store, tmp_path: Path) -> None:
    named = ind("[domain-name:value = 'red.example']", sid("indicator", "1"), tlp=TLP.RED)
    named[AUDIENCE_PROPERTY] = ["latvia"]
    amber = ind("[domain-name:value = 'amber.example']", sid("indicator", "2"), tlp=TLP.AMBER)
    green = ind("[domain-name:value = 'green.example']", sid("indicator", "3"), tlp=TLP.GREEN)
    store.put_many([named, amber, green], Provenance("finland"))

    def exported(member: Member, **kw: Any) -> set[str]:
        out = tmp_path / member.name / str(kw.get("tlp_max"))
        Exporter(store, Targets(zeek=out), access_for(member), **kw).run(NOW)
        return {r["indicator"] for r in zeek_records(out / "shieldwall.intel")}

    assert exported(Member("latvia", "ally")) == {"red.example", "amber.example",
                                                  "green.example"}
    assert exported(Member("estonia", "ally")) == {"amber.example", "green.example"}
    assert exported(Member("partner-org", "partner")) == {"green.example"}
    assert exported(Member("latvia", "ally"), tlp_max=TLP.GREEN) == {"green.example"}


@pytest.mark.parametrize("pattern,reason", [
    ("[domain-name:value MATCHES '^a']", "no faithful sensor form"),
    ("[network-traffic:dst_port = 443]", "a port alone"),
    ("[network-traffic:dst_ref.value = '192.0.2.1' AND network-traffic:dst_port = 53]",
     "a port without a tcp/udp protocol"),
    ("[url:value = 'http://u:p@x.example/']", "user information"),
    ("[file:hashes.'SHA-256' = 'abc']", "not a sha256 digest"),
])
def test_patterns_without_a_faithful_form_are_listed(store: Store, tmp_path: Path,
                                                     pattern: str, reason: str) -> None:
    store.put(ind(pattern, sid("indicator", "1")), Provenance("estonia"))
    export(store, tmp_path)
    assert reason in (tmp_path / "zeek" / "skipped.tsv").read_text()
    assert reason in (tmp_path / "suricata" / "skipped.tsv").read_text()
    assert zeek_records(tmp_path / "zeek" / "shieldwall.intel") == []


def test_watch_rewrites_when_the_active_set_changes(store: Store, tmp_path: Path) -> None:
    from shieldwall.outputs.sensors.watch import watch

    store.put(INDICATORS[0], Provenance("estonia"))
    ex = Exporter(store, Targets(zeek=tmp_path / "zeek"))
    polls: list[int] = []
    reports: list[Any] = []

    def until() -> bool:
        polls.append(1)
        if len(polls) == 2:  # after one quiet poll, a new indicator arrives
            store.put(INDICATORS[2], Provenance("estonia"))
        return len(polls) > 4

    watch(ex, interval=0, until=until, on_export=reports.append)
    assert [sorted(p.name for p in r.written) for r in reports] == [
        ["shieldwall.intel", "skipped.tsv"], ["shieldwall.intel"]]
    values = {r["indicator"] for r in zeek_records(tmp_path / "zeek" / "shieldwall.intel")}
    assert values == {"198.51.100.7", "xn--bcher-kva.example"}
    assert not [p for p in (tmp_path / "zeek").iterdir() if p.name.startswith(".")]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    home = tmp_path / "node"
    env = dict(os.environ, SHIELDWALL_HOME=str(home), COLUMNS="200")

    def sw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "shieldwall.cli.main", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    assert sw("init", "--member", "estonia").returncode == 0
    for args, said in ((["sensors", "export"], "give at least one of --zeek"),
                       (["sensors", "export", "--zeek", str(tmp_path), "--for", "nobody"],
                        "nobody"),
                       (["sensors", "export", "--zeek", str(tmp_path), "--sid-range", "5-9"],
                        "--sid-range")):
        r = sw(*args)
        assert r.returncode == 2 and said in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
