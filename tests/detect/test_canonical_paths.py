"""One value written two legal ways is one value, on every path that compares values.

One table of cases (value kind, the indicator as a feed writes it, the value as telemetry or a
second feed writes it, whether they are the same value) is run through: the index and the
exact verdicts over a real Zeek and a real Suricata log line carrying the value, `matches`,
the retro-hunt over the telemetry a hunt kept, `Store.search` (SQLite and PostgreSQL),
correlation (two indicators written differently name one value) and the warning lists. The
rules themselves are in tests/stix/test_values.py; docs/patterns.md lists them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from shieldwall.assess.correlation import pattern_values
from shieldwall.detect import matches
from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.retro import TelemetryStore, retro_hunt
from shieldwall.detect.sightings import Sightings
from shieldwall.ingest import warninglists as wl
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store

DATA = Path(__file__).parents[1] / "data"
MEMBER = "identity--00000000-0000-4000-8000-0000000000aa"
SHA = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
OTHER_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True)
class Case:
    kind: str  # hash, domain, ip, url, email
    name: str
    pattern: str  # the indicator, as a feed writes it
    seen: str  # the value as the telemetry (or another feed) writes it
    same: bool  # one value?
    search_finds: bool | None = None  # Store.search, when it differs from `same`

    @property
    def literal(self) -> str:
        return re.search(r"'((?:[^'\\]|\\.)*)'\]$", self.pattern).group(1)  # type: ignore[union-attr]

    @property
    def path(self) -> str:
        return self.pattern[1:].split(" ", 1)[0]

    @property
    def equality(self) -> bool:
        return " = " in self.pattern


CASES = [
    Case("hash", "upper-case indicator", f"[file:hashes.'SHA-256' = '{SHA.upper()}']", SHA, True),
    Case("hash", "upper-case telemetry", f"[file:hashes.'SHA-256' = '{SHA}']", SHA.upper(), True),
    Case("hash", "another digest", f"[file:hashes.'SHA-256' = '{SHA.upper()}']", OTHER_SHA,
         False),
    Case("domain", "upper-case indicator", "[domain-name:value = 'EVIL.Example.COM']",
         "evil.example.com", True),
    Case("domain", "trailing dot in telemetry", "[domain-name:value = 'evil.example.com']",
         "evil.example.com.", True),
    Case("domain", "trailing dot and case in indicator",
         "[domain-name:value = 'Evil.Example.com.']", "EVIL.example.com", True),
    Case("domain", "Unicode indicator, punycode telemetry",
         "[domain-name:value = 'Bücher.example']", "xn--bcher-kva.example", True),
    Case("domain", "punycode indicator, Unicode telemetry",
         "[domain-name:value = 'xn--bcher-kva.example']", "BÜCHER.example", True),
    Case("domain", "suffix LIKE in upper case", "[domain-name:value LIKE '%.Example.COM']",
         "evil.example.com", True, search_finds=False),  # search: what a pattern names
    Case("domain", "a parent domain is another value", "[domain-name:value = 'example.com']",
         "evil.example.com", False, search_finds=False),
    Case("ip", "IPv6 compressed, telemetry expanded", "[ipv6-addr:value = '2001:db8::66']",
         "2001:0db8:0000:0000:0000:0000:0000:0066", True),
    Case("ip", "IPv6 upper-case hex", "[ipv6-addr:value = '2001:DB8::AB']", "2001:db8::ab",
         True),
    Case("ip", "IPv4-mapped IPv6 against the IPv4 indicator",
         "[ipv4-addr:value = '203.0.113.66']", "::ffff:203.0.113.66", True),
    Case("ip", "IPv4-mapped IPv6 in an IPv4 CIDR", "[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
         "::ffff:203.0.113.66", True, search_finds=False),
    Case("ip", "another IPv6 address", "[ipv6-addr:value = '2001:db8::66']", "2001:db8::67",
         False),
    Case("url", "scheme and host case",
         "[url:value = 'HTTP://Update.Malware-C2.EXAMPLE/gate.php?id=4f2a']",
         "http://update.malware-c2.example/gate.php?id=4f2a", True),
    Case("url", "IDNA host", "[url:value = 'http://Bücher.example/gate.php']",
         "http://xn--bcher-kva.example/gate.php", True),
    Case("url", "the path keeps its case", "[url:value = 'http://malware-c2.example/GATE.php']",
         "http://malware-c2.example/gate.php", False, search_finds=True),
    Case("email", "domain case", "[email-addr:value = 'ops@Malware-C2.EXAMPLE']",
         "ops@malware-c2.example", True),
    Case("email", "the local part keeps its case", "[email-addr:value = 'OPS@malware-c2.example']",
         "ops@malware-c2.example", False, search_finds=True),
]
IDS = [f"{c.kind}: {c.name}" for c in CASES]


def _indicator(pattern: str, n: int = 1) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "name": f"case {n}", "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-01T00:00:00.000Z", "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2010-01-01T00:00:00Z"}


# ---- real log lines carrying the value ---------------------------------------------------

def _zeek(log: str, fields: dict[str, str], tmp: Path) -> Path:
    """A real Zeek TSV line of `log` with `fields` set, under the file's own header."""
    lines = (DATA / "zeek" / f"{log}.log").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#") and not ln.startswith("#close")]
    names = next(ln for ln in header if ln.startswith("#fields")).split("\t")[1:]
    row = next(ln for ln in lines if not ln.startswith("#")).split("\t")
    for name, value in fields.items():
        row[names.index(name)] = value
    out = tmp / f"{log}.log"
    out.write_text("\n".join([*header, "\t".join(row)]) + "\n")
    return out


def _eve(event_type: str, change: dict[str, Any], tmp: Path) -> Path:
    """A real Suricata EVE record of `event_type` with `change` applied (dotted keys)."""
    for raw in (DATA / "suricata" / "eve.json").read_bytes().splitlines():
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if rec.get("event_type") == event_type:
            break
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = rec
        for key in parents:
            target = target[key]
        target[last] = value
    out = tmp / "eve.json"
    out.write_bytes(orjson.dumps(rec) + b"\n")
    return out


def _url_parts(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    return host, "/" + path


def zeek_log(case: Case, tmp: Path) -> Path:
    if case.kind == "hash":
        return _zeek("files", {"sha256": case.seen}, tmp)
    if case.kind == "domain":
        return _zeek("dns", {"query": case.seen}, tmp)
    if case.kind == "ip":
        return _zeek("conn", {"id.resp_h": case.seen}, tmp)
    if case.kind == "url":
        host, path = _url_parts(case.seen)
        return _zeek("http", {"host": host, "uri": path}, tmp)
    return _zeek("smtp", {"mailfrom": case.seen}, tmp)


def suricata_log(case: Case, tmp: Path) -> Path | None:
    if case.kind == "hash":
        return _eve("fileinfo", {"fileinfo.sha256": case.seen}, tmp)
    if case.kind == "domain":
        return _eve("dns", {"dns.rrname": case.seen}, tmp)
    if case.kind == "ip":
        return _eve("flow", {"dest_ip": case.seen}, tmp)
    if case.kind == "url":  # an absolute request target, as a proxy receives it
        return _eve("http", {"http.hostname": _url_parts(case.seen)[0], "http.url": case.seen},
                    tmp)
    return None  # the EVE reader has no mail events


def _hunt(case: Case, log: Path, sink: Any = None) -> int:
    index = IndicatorIndex()
    assert index.add(_indicator(case.pattern)) is None
    hunter = Hunter(index, Sightings(MEMBER, TLP.AMBER), sink=sink)
    hunter.run([log])
    assert hunter.stats.bad_count == 0
    return hunter.sightings.hits


# ---- the paths ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_index_over_a_real_zeek_line(case: Case, tmp_path: Path) -> None:
    assert (_hunt(case, zeek_log(case, tmp_path)) == 1) is case.same


@pytest.mark.parametrize("case", [c for c in CASES if c.kind != "email"],
                         ids=[i for c, i in zip(CASES, IDS, strict=True) if c.kind != "email"])
def test_index_over_a_real_suricata_line(case: Case, tmp_path: Path) -> None:
    log = suricata_log(case, tmp_path)
    assert log is not None
    assert (_hunt(case, log) == 1) is case.same


def _observed(case: Case) -> list[dict[str, Any]]:
    """STIX 2.1 observed-data whose object is of the pattern's type, written as `seen`."""
    object_type, _, prop = case.path.partition(":")
    sco: dict[str, Any] = {"type": object_type, "spec_version": "2.1",
                           "id": f"{object_type}--{uuid.uuid4()}"}
    if prop.startswith("hashes."):
        sco["hashes"] = {"SHA-256": case.seen}
    else:
        sco[prop] = case.seen
    od = {"type": "observed-data", "spec_version": "2.1", "id": f"observed-data--{uuid.uuid4()}",
          "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
          "first_observed": "2024-01-01T00:00:00Z", "last_observed": "2024-01-01T00:00:00Z",
          "number_observed": 1, "object_refs": [sco["id"]]}
    return [od, sco]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches(case: Case) -> None:
    assert matches(case.pattern, _observed(case)) is case.same


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_retro_hunt_over_kept_telemetry(case: Case, tmp_path: Path) -> None:
    root = tmp_path / "telemetry"
    store = TelemetryStore(root)
    keep = Hunter(IndicatorIndex(), Sightings(MEMBER, TLP.AMBER), sink=store.write)
    keep.run([zeek_log(case, tmp_path)])
    index = IndicatorIndex()
    index.add(_indicator(case.pattern))
    hits = retro_hunt(root, index, Hunter(index, Sightings(MEMBER, TLP.AMBER)),
                      20_000 * 86_400 * 1_000_000)
    assert (hits == 1) is case.same


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_store_search(case: Case, store: Store) -> None:
    ind = _indicator(case.pattern)
    store.put(ind, Provenance("feed"))
    found = [r.id for r in store.search(case.seen)]
    expected = case.same if case.search_finds is None else case.search_finds
    assert (found == [ind["id"]]) is expected, found


def _written_as_seen(case: Case) -> str:
    return f"[{case.path} = '{case.seen}']"


@pytest.mark.parametrize("case", [c for c in CASES if c.equality],
                         ids=[i for c, i in zip(CASES, IDS, strict=True) if c.equality])
def test_correlation_sees_one_value(case: Case) -> None:
    a, b = pattern_values(case.pattern), pattern_values(_written_as_seen(case))
    assert a and b
    assert (a == b) is case.same


def test_correlation_links_sightings_of_indicators_written_differently(store: Store) -> None:
    """Two members sight two indicators that name one domain in two spellings: the sightings
    share that value, so correlation puts them in one group."""
    from shieldwall.assess.correlation import Correlator
    from shieldwall.node import member_identity_id

    a = _indicator("[domain-name:value = 'Bücher.EXAMPLE.']")
    b = _indicator("[domain-name:value = 'xn--bcher-kva.example']")
    store.put_many([a, b], Provenance("feed"))
    sightings = []
    for member, ind, ts in (("north", a, "2024-05-01T00:00:00.000Z"),
                            ("south", b, "2024-05-02T00:00:00.000Z")):
        s = {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
             "created": ts, "modified": ts, "created_by_ref": member_identity_id(member),
             "sighting_of_ref": ind["id"], "where_sighted_refs": [member_identity_id(member)],
             "first_seen": ts, "last_seen": ts, "count": 1}
        store.put(s, Provenance(member, "federation"))
        sightings.append(s["id"])
    c = Correlator(store)
    c.update_from_store()
    groups = [g for g in c.groups() if set(sightings) & g.ids()]
    assert len(groups) == 1 and set(sightings) <= groups[0].ids()
    assert any(link[2:] == ("domain", "xn--bcher-kva.example") for link in groups[0].links)


_WL_KIND = {"hash": ["sha256"], "domain": ["domain", "hostname"], "ip": ["ip-dst"],
            "url": ["url"], "email": ["email-src"]}


@pytest.mark.parametrize("case", [c for c in CASES if c.equality],
                         ids=[i for c, i in zip(CASES, IDS, strict=True) if c.equality])
def test_warning_lists_see_one_value(case: Case) -> None:
    """A list entry written one way flags an indicator written the other way, and a value
    looked up the other way is on the list."""
    def index(entry: str) -> wl.WarningIndex:
        return wl.WarningIndex([{"name": "known benign", "list": [entry],
                                 "type": "cidr" if case.kind == "ip" else "string",
                                 "matching_attributes": _WL_KIND[case.kind]}])

    assert bool(index(case.seen).check_indicator(_indicator(case.pattern))) is case.same
    assert bool(index(case.literal).check_indicator(
        _indicator(_written_as_seen(case)))) is case.same
