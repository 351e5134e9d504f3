"""A shared indicator can never inject a Suricata rule, a Zeek Intel field or an RPZ record.

A peer stores indicators whose values and names carry tabs, newlines, quotes, semicolons,
pipes, backslashes, rule text, zone records, bidi controls and over-long names. Every output
is then read the way its consumer reads it, and holds exactly the records the honest values
make: each hostile value is either written inertly (hex in a Suricata content) or skipped
with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shieldwall.outputs.sensors.export import Exporter, Targets
from shieldwall.policy.model import Member
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator, sid
from tests.outputs.test_sensor_export import NOW, parse_rules, zeek_records

RULE = '"; sid:1; rev:1;) alert ip any any -> any any (msg:"owned"; pcre:"/x/"; sid:2;'
ZEEK = "1.2.3.4\tIntel::ADDR\tindicator--00000000-0000-4000-8000-000000000000\tx\t-"


def hostile(pattern: str, digit: str, name: str = "hostile") -> dict[str, Any]:
    obj = indicator(oid=sid("indicator", digit))
    obj["pattern"] = pattern
    obj["name"] = name
    return obj


def esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


HOSTILE = [
    # written, inert: a URL full of rule syntax (no spaces: it is a URL on the wire)
    hostile("[url:value = '" + esc('http://x.example/p?q=a;b|c"d\\e)f') + "']", "1",
            name=RULE),
    # written, inert: honest values under hostile names
    hostile("[domain-name:value = 'ok.example']", "2", name=f"a\tb\nc {ZEEK}\r\n{RULE}"),
    hostile("[ipv4-addr:value = '192.0.2.9']", "3", name="bidi \u202e\u0007 name; |x|"),
    # refused with a reason
    hostile("[domain-name:value = 'evil.example\nbad CNAME .']", "4"),
    hostile("[domain-name:value = 'evil.example. IN NS attacker.']", "5"),
    hostile("[domain-name:value = 'evil\u202e.example']", "6"),
    hostile("[domain-name:value = '" + "a" * 64 + ".example']", "7"),
    hostile("[domain-name:value = '" + ("a" * 60 + ".") * 5 + "example']", "8"),
    hostile("[email-addr:value = 'a\tb@x.example']", "9"),
    hostile("[url:value = 'http://x.example/a b\r\nHost: y']", "a"),
    hostile("[file:hashes.'SHA-256' = '" + "a" * 63 + "\n']", "b"),
    hostile("[domain-name:value LIKE '%.x.example\n* CNAME .']", "c"),
    hostile("[url:value = '" + esc(f"http://x.example/{ZEEK}") + "']", "d"),
    # a legal name too long for the zone once its origin is added: the resolver would
    # refuse the whole zone; skipped from the RPZ only
    hostile("[domain-name:value = '" + ("a" * 60 + ".") * 4 + "example']", "e"),
]


def run(store: Store, tmp: Path) -> None:
    store.put_many(HOSTILE, Provenance("peer-node", "federation"))
    targets = Targets(tmp / "zeek", tmp / "suricata", tmp / "zone.rpz", tmp / "ioc.csv")
    Exporter(store, targets, access_for(Member("estonia", "ally"))).run(NOW)


def test_no_rule_field_or_record_is_injected(store: Store, tmp_path: Path) -> None:
    run(store, tmp_path)

    recs = zeek_records(tmp_path / "zeek" / "shieldwall.intel")
    assert sorted((r["indicator"], r["indicator_type"], r["meta.source"]) for r in recs) == [
        ("192.0.2.9", "Intel::ADDR", sid("indicator", "3")),
        (("a" * 60 + ".") * 4 + "example", "Intel::DOMAIN", sid("indicator", "e")),
        ("ok.example", "Intel::DOMAIN", sid("indicator", "2")),
        ("x.example/p?q=a;b|c\"d\\e)f", "Intel::URL", sid("indicator", "1")),
    ]
    assert all("\r" not in r["meta.desc"] and "indicator--0000" not in r["meta.source"]
               for r in recs)

    text = (tmp_path / "suricata" / "shieldwall.rules").read_text()
    rules = parse_rules(tmp_path / "suricata" / "shieldwall.rules")
    mine = [r for r in rules if any(m.startswith("shieldwall_id") for m in r["metadata"])]
    assert len(mine) == 1  # the URL: one rule, one sid, its content in hex
    url = mine[0]
    from suricata_check.utils.rule import parse

    options = [(o.name, o.value) for o in parse(url["raw"]).options]
    assert [n for n, _ in options] == ["msg", "flow", "http.host", "content", "bsize",
                                       "http.uri.raw", "content", "bsize", "sid", "rev",
                                       "metadata"]
    msg = options[0][1]  # the hostile name as words, without quotes or semicolons
    assert msg.startswith('"SHIELDWALL URL sid:1 rev:1 ) alert ip') and msg.count('"') == 2
    assert ";" not in msg and "\\" not in msg
    assert options[6][1] == '"/p?q=a|3b|b|7c|c|22|d|5c|e|29|f"'
    assert url["sid"] not in (1, 2)
    assert all(r["sid"] not in (1, 2) for r in rules)
    assert text.count("\n") == len(rules) + 1  # one comment line, then one rule a line

    import dns.zone

    zone = dns.zone.from_text((tmp_path / "zone.rpz").read_text(), origin="rpz.example.",
                              relativize=True)
    records = sorted((str(n), rds.rdtype.name) for n, node in zone.nodes.items()
                     for rds in node.rdatasets)
    assert records == [("@", "NS"), ("@", "SOA"), ("ok.example", "CNAME")]
    assert f"{sid('indicator', 'e')}\ta name over 200 characters" in (
        tmp_path / "zone.rpz.skipped.tsv").read_text()

    import csv

    with open(tmp_path / "ioc.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [len(r) for r in rows] == [6] * 5  # the header and four values
    assert {r[2] for r in rows[1:]} == {"192.0.2.9", "ok.example", ("a" * 60 + ".") * 4 +
                                        "example", 'http://x.example/p?q=a;b|c"d\\e)f'}

    skipped = (tmp_path / "zeek" / "skipped.tsv").read_text().splitlines()
    assert skipped[0] == "id\treason"
    assert sorted(line.split("\t")[0] for line in skipped[1:]) == sorted(
        sid("indicator", d) for d in "456789abcd")
    assert all(line.count("\t") == 1 for line in skipped)
