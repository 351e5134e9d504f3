from __future__ import annotations

from pathlib import Path

import pytest
from stix2patterns.validator import run_validator
from stix2validator import ValidationOptions, validate_instance

from shieldwall.ingest import defang as d
from shieldwall.ingest import ioc_list
from shieldwall.ingest.base import ReadOptions, Rejected, formats
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, tlp_marking_ref

SHA256 = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"

PRODUCER = {
    "type": "identity", "spec_version": "2.1",
    "id": "identity--8c0d3c1e-7d2a-4e0a-9f52-3d6a0c1b2e4f",
    "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
    "name": "CERT-Test", "identity_class": "organization",
}
_VOPTS = ValidationOptions(version="2.1")


def _opts(tlp: TLP | None = TLP.GREEN, **extra) -> ReadOptions:
    return ReadOptions(producer=PRODUCER, tlp=tlp, extra=extra)


def _valid(obj: dict) -> None:
    result = validate_instance(obj, _VOPTS)
    assert result.is_valid, [str(e) for e in result.errors]
    if obj["type"] == "indicator":
        assert run_validator(obj["pattern"], stix_version="2.1") == []


def _read(reader, tmp_path: Path, text: str, name: str, **kw) -> list:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return list(reader(path, _opts(**kw)))


@pytest.mark.parametrize(("raw", "kind", "value", "pattern"), [
    ("198.51.100.7", d.IPV4, "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
    ("198.51.100[.]7", d.IPV4, "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
    ("2001:db8::42", d.IPV6, "2001:db8::42", "[ipv6-addr:value = '2001:db8::42']"),
    ("203.0.113.9/24", d.IPV4_CIDR, "203.0.113.0/24",
     "[ipv4-addr:value ISSUBSET '203.0.113.0/24']"),
    ("2001:db8::/32", d.IPV6_CIDR, "2001:db8::/32", "[ipv6-addr:value ISSUBSET '2001:db8::/32']"),
    ("evil-c2.net", d.DOMAIN, "evil-c2.net", "[domain-name:value = 'evil-c2.net']"),
    ("Evil-C2[.]NET", d.DOMAIN, "evil-c2.net", "[domain-name:value = 'evil-c2.net']"),
    ("evil-c2(.)net", d.DOMAIN, "evil-c2.net", "[domain-name:value = 'evil-c2.net']"),
    ("evil-c2(dot)net", d.DOMAIN, "evil-c2.net", "[domain-name:value = 'evil-c2.net']"),
    ("evil-c2[dot]net", d.DOMAIN, "evil-c2.net", "[domain-name:value = 'evil-c2.net']"),
    ("evil-c2{.}net", d.DOMAIN, "evil-c2.net", "[domain-name:value = 'evil-c2.net']"),
    ("hxxp://evil-c2[.]net/gate.php", d.URL, "http://evil-c2.net/gate.php",
     "[url:value = 'http://evil-c2.net/gate.php']"),
    ("hxxps[:]//evil-c2[.]net/a", d.URL, "https://evil-c2.net/a",
     "[url:value = 'https://evil-c2.net/a']"),
    ("hXXps://evil-c2.net/", d.URL, "https://evil-c2.net/", "[url:value = 'https://evil-c2.net/']"),
    ("ops[@]evil-c2.net", d.EMAIL, "ops@evil-c2.net", "[email-addr:value = 'ops@evil-c2.net']"),
    ("ops[at]evil-c2[.]net", d.EMAIL, "ops@evil-c2.net", "[email-addr:value = 'ops@evil-c2.net']"),
    ("0749BAE92CA336A02C83D126E04EC628", d.MD5, "0749bae92ca336a02c83d126e04ec628",
     "[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']"),
    ("77b0c41b7d340b8a3d903f21347bbf06aa766b5b", d.SHA1,
     "77b0c41b7d340b8a3d903f21347bbf06aa766b5b",
     "[file:hashes.'SHA-1' = '77b0c41b7d340b8a3d903f21347bbf06aa766b5b']"),
    (SHA256.upper(), d.SHA256, SHA256, f"[file:hashes.'SHA-256' = '{SHA256}']"),
    ("3Z4wnG9603it23y.exe", d.FILENAME, "3Z4wnG9603it23y.exe",
     "[file:name = '3Z4wnG9603it23y.exe']"),
    ("invoice.zip", d.FILENAME, "invoice.zip", "[file:name = 'invoice.zip']"),
    ("invoice[.]zip", d.DOMAIN, "invoice.zip", "[domain-name:value = 'invoice.zip']"),
])
def test_every_kind_and_defang_form(raw: str, kind: str, value: str, pattern: str) -> None:
    assert d.classify(raw) == (kind, value)
    assert ioc_list.pattern_for(kind, value) == pattern
    assert run_validator(pattern, stix_version="2.1") == []


@pytest.mark.parametrize("raw", ["e.g", "1.2.3", "hello", "report.final.version2x", "12345",
                                 "abcdef0123", "user@nowhere"])
def test_non_iocs_are_not_typed(raw: str) -> None:
    assert d.classify(raw) is None


def test_quotes_and_backslashes_are_escaped_in_patterns() -> None:
    pattern = ioc_list.pattern_for(d.URL, "http://x.example/a'b\\c")
    assert pattern == "[url:value = 'http://x.example/a\\'b\\\\c']"
    assert run_validator(pattern, stix_version="2.1") == []
    name = ioc_list.pattern_for(d.FILENAME, "it's.exe")
    assert name == "[file:name = 'it\\'s.exe']"
    assert run_validator(name, stix_version="2.1") == []


def test_text_list_gives_valid_marked_indicators_and_rejects_bad_lines(tmp_path: Path) -> None:
    items = _read(ioc_list.read_text, tmp_path,
                  "# C2 list\n198.51.100[.]7\nnot-an-ioc\n\nevil-c2(dot)net\n198.51.100.7\n",
                  "list.txt", tlp=TLP.AMBER)
    assert items[0] == PRODUCER
    assert items[1]["id"] == tlp_marking_ref(TLP.AMBER)
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert rejected == [Rejected("line 3", "not a recognised IOC: 'not-an-ioc'")]
    indicators = [i for i in items if isinstance(i, dict) and i["type"] == "indicator"]
    # the repeated address is one indicator
    assert [i["pattern"] for i in indicators] == ["[ipv4-addr:value = '198.51.100.7']",
                                                  "[domain-name:value = 'evil-c2.net']"]
    for obj in items:
        if isinstance(obj, dict):
            _valid(obj)
    ind = indicators[0]
    assert ind["created_by_ref"] == PRODUCER["id"]
    assert ind["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER)]
    assert ind["pattern_type"] == "stix"
    assert ind["valid_from"] == ind["created"] == ind["modified"]
    assert ind["id"] == deterministic_id("indicator", f"{PRODUCER['id']}|ipv4|198.51.100.7")


def test_reimport_gives_the_same_objects(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("evil-c2.net\nhxxp://evil-c2[.]net/x\n", encoding="utf-8")
    first = list(ioc_list.read_text(path, _opts()))
    second = list(ioc_list.read_text(path, _opts()))
    assert first == second
    assert len({o["id"] for o in first if o["type"] == "indicator"}) == 2


def test_without_tlp_indicators_stay_unmarked(tmp_path: Path) -> None:
    items = _read(ioc_list.read_text, tmp_path, "evil-c2.net\n", "l.txt", tlp=None)
    assert [o["type"] for o in items] == ["identity", "indicator"]
    assert "object_marking_refs" not in items[1]


def test_timestamp_option_sets_valid_from(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("evil-c2.net\n", encoding="utf-8")
    items = list(ioc_list.read_text(path, _opts(timestamp="2024-05-01T10:00:00.000Z")))
    assert items[-1]["valid_from"] == "2024-05-01T10:00:00.000Z"


def test_prose_paragraph(tmp_path: Path) -> None:
    text = (
        "The actor phished staff via hxxps://login-micros0ft[.]com/auth and dropped\n"
        "invoice.exe (MD5 0749bae92ca336a02c83d126e04ec628), beaconing to 185.220.101[.]4.\n"
        "Replies went to attacker[at]evil-mail[.]ru. Node.js, e.g. ASP.NET, was not involved.\n"
    )
    items = _read(ioc_list.read_text, tmp_path, text, "report.txt")
    patterns = [o["pattern"] for o in items if isinstance(o, dict) and o["type"] == "indicator"]
    assert patterns == [
        "[url:value = 'https://login-micros0ft.com/auth']",
        "[file:name = 'invoice.exe']",
        "[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']",
        "[ipv4-addr:value = '185.220.101.4']",
        "[email-addr:value = 'attacker@evil-mail.ru']",
        "[domain-name:value = 'asp.net']",
    ]
    assert not [o for o in items if isinstance(o, Rejected)]


ABUSE_CH = """\
################################################################
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #
################################################################
#
# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware
"2021-01-17 07:44:46","51.178.161.32","4643","online","2024-03-01","Dridex"
"2021-01-18 09:00:00","67.213.75[.]205","443","offline","2024-02-01","QakBot"
"2021-01-18 09:00:00","nonsense","443","offline","2024-02-01","QakBot"
"""

MISP_CSV = f"""\
uuid,event_id,category,type,value,comment,to_ids,date,object_relation
5a0ac48c-0001,1,Network activity,ip-dst,198.51.100.7,C2 server,1,1510647436,
5a0ac48c-0002,1,Payload delivery,sha256,{SHA256},,1,1510647436,
5a0ac48c-0003,1,Payload delivery,filename,Invoice 2024.pdf.exe,lure,1,1510647436,
5a0ac48c-0004,1,Persistence mechanism,mutex,Global\\\\xyz,,1,1510647436,
5a0ac48c-0005,1,Network activity,domain,198.51.100.8,,1,1510647436,
"""


def test_abuse_ch_csv_header_in_comment(tmp_path: Path) -> None:
    items = _read(ioc_list.read_csv, tmp_path, ABUSE_CH, "feodo.csv")
    inds = [o for o in items if isinstance(o, dict) and o["type"] == "indicator"]
    assert [(i["pattern"], i["valid_from"], i["description"]) for i in inds] == [
        ("[ipv4-addr:value = '51.178.161.32']", "2021-01-17T07:44:46.000Z", "Dridex"),
        ("[ipv4-addr:value = '67.213.75.205']", "2021-01-18T09:00:00.000Z", "QakBot"),
    ]
    assert [o for o in items if isinstance(o, Rejected)] == [
        Rejected("line 8", "not a recognised IOC: 'nonsense'")]
    for obj in inds:
        _valid(obj)


def test_misp_csv_export_uses_type_value_comment_and_date(tmp_path: Path) -> None:
    items = _read(ioc_list.read_csv, tmp_path, MISP_CSV, "misp.csv")
    inds = [o for o in items if isinstance(o, dict) and o["type"] == "indicator"]
    assert [i["pattern"] for i in inds] == [
        "[ipv4-addr:value = '198.51.100.7']",
        f"[file:hashes.'SHA-256' = '{SHA256}']",
        "[file:name = 'Invoice 2024.pdf.exe']",
    ]
    assert inds[0]["description"] == "C2 server"
    assert inds[0]["valid_from"] == "2017-11-14T08:17:16.000Z"
    rejected = {r.where: r.reason for r in items if isinstance(r, Rejected)}
    assert set(rejected) == {"line 5", "line 6"}
    assert "mutex" in rejected["line 5"]
    assert "type column says 'domain'" in rejected["line 6"]
    for obj in inds:
        _valid(obj)


def test_headerless_csv_takes_the_first_ioc_cell(tmp_path: Path) -> None:
    items = _read(ioc_list.read_csv, tmp_path, "443,198.51.100.7\n80,evil-c2.net\n80,none\n",
                  "plain.csv")
    patterns = [o["pattern"] for o in items if isinstance(o, dict) and o["type"] == "indicator"]
    assert patterns == ["[ipv4-addr:value = '198.51.100.7']", "[domain-name:value = 'evil-c2.net']"]
    assert [r.where for r in items if isinstance(r, Rejected)] == ["line 3"]


def test_plain_header_names_the_value_column(tmp_path: Path) -> None:
    items = _read(ioc_list.read_csv, tmp_path,
                  "id;indicator;note\n1;evil-c2.net;seen in phishing\n", "x.csv")
    ind = items[-1]
    assert ind["pattern"] == "[domain-name:value = 'evil-c2.net']"


def test_sniffing_order() -> None:
    fmts = formats()
    csv_fmt, text_fmt = fmts["csv"], fmts["text"]
    assert csv_fmt.sniff(b"a,b\n1.2.3.4,x\n5.6.7.8,y\n", Path("feed"))
    assert csv_fmt.sniff(b"anything", Path("x.csv"))
    assert not csv_fmt.sniff(b"evil.com\nbad.org\n", Path("feed"))
    assert text_fmt.sniff(b"evil.com\nbad.org\n", Path("feed"))
    assert not text_fmt.sniff(b'{"type": "bundle"}', Path("x.txt"))
    assert not text_fmt.sniff(b"\x00\x01\x02binary", Path("x.bin"))
