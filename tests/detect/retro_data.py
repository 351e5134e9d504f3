"""Telemetry and indicators the retro-hunt differential tests share.

Real telemetry: the Zeek and Suricata logs under tests/data, kept as a hunt keeps them.
Generated telemetry: several days, several files a day, with the value shapes the plan
treats apart (IPv4 and IPv6 addresses, host names in address columns, domains, URLs,
hashes, nulls), so that summary-first, a full scan, DuckDB and Spark can be compared.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa

from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.readers.base import Observations
from shieldwall.detect.retro import TelemetryStore
from shieldwall.detect.sightings import Hit, Sightings
from shieldwall.stix.markings import TLP

DATA = Path(__file__).parents[1] / "data"
MEMBER = "identity--00000000-0000-4000-8000-00000000000a"
ALL_TIME = 40_000 * 86_400 * 1_000_000
DAY_US = 86_400 * 1_000_000
DAY0 = 19_800 * DAY_US  # 2024-03-18
REAL_LOGS = [*sorted((DATA / "zeek").glob("*.log")), DATA / "suricata" / "eve.json"]

# Real telemetry: what each shape finds in the logs under tests/data.
REAL_PATTERNS = [
    "[ipv4-addr:value = '54.245.228.191']",
    "[network-traffic:dst_ref.value = '54.245.228.191']",
    "[domain-name:value LIKE '%.guyspy.com']",
    "[domain-name:value = 'www.guyspy.com']",
    "[ipv4-addr:value ISSUBSET '54.230.0.0/16']",
    "[network-traffic:src_ref.value ISSUBSET '192.168.33.0/24']",
    "[url:value MATCHES '^http://[^/]*guyspy[.]com/.*[.]js']",
    "[url:value LIKE 'http://www.guyspy.com/%']",
    "[file:hashes.MD5 = '92bf83360b8ed10d82e38bcdcfcfa4a7']",
    "[domain-name:value = 'www.guyspy.com'] OR [ipv4-addr:value = '192.168.33.10']",
    "[network-traffic:dst_ref.value = '54.245.228.191' AND network-traffic:dst_port = 80]",
    "[domain-name:value = 'www.guyspy.com'] AND [ipv4-addr:value = '54.245.228.191']",
    # The last two find nothing: a candidate whose other comparison fails, and an AND of
    # observations one of which is absent.
    "[network-traffic:dst_ref.value = '54.245.228.191' AND network-traffic:dst_port = 443]",
    "[domain-name:value = 'www.guyspy.com'] AND [ipv4-addr:value = '203.0.113.99']",
]

# Generated telemetry: the values the generator plants, and patterns over them.
GEN_PATTERNS = [
    "[ipv4-addr:value = '198.51.100.7']",
    "[network-traffic:dst_ref.value IN ('198.51.100.7', '2001:db8::7')]",
    "[ipv6-addr:value = '2001:db8::7']",
    "[ipv4-addr:value ISSUBSET '203.0.113.0/28']",
    "[ipv4-addr:value ISSUBSET '10.9.0.0/16']",
    "[domain-name:value LIKE '%.bad.example']",
    "[domain-name:value LIKE '%.c2.bad.example']",
    "[domain-name:value = 'login.bad.example']",
    "[url:value MATCHES '/(dropper|stage2)[.](exe|ps1)$']",
    "[url:value MATCHES '(?i)^HTTP://CDN[0-9]+[.]']",
    "[file:hashes.MD5 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa7']",
    "[domain-name:value = 'login.bad.example'] OR [file:hashes.MD5 = "
    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3']",
    "[network-traffic:dst_ref.value ISSUBSET '10.9.1.0/24' AND network-traffic:dst_port = 8443]",
    "[ipv4-addr:value = '198.51.100.7'] AND [domain-name:value = 'login.bad.example']",
    "[ipv4-addr:value = '198.51.100.7'] FOLLOWEDBY [url:value MATCHES 'stage2']",
    # The last two find nothing: an address planted nowhere, and an AND of observations
    # one of which is absent.
    "[ipv4-addr:value = '192.0.2.254']",
    "[ipv4-addr:value = '198.51.100.7'] AND [domain-name:value = 'nowhere.bad.example']",
]


def indicator(n: int, pattern: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-{n:012d}", "name": f"ind{n}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2010-01-01T00:00:00Z"}


def index_of(patterns: list[str]) -> IndicatorIndex:
    index = IndicatorIndex()
    for i, p in enumerate(patterns, 1):
        assert index.add(indicator(i, p)) is None, p
    return index


def keep_real(root: Path) -> None:
    """The Zeek and Suricata logs under tests/data, kept as `shieldwall hunt` keeps them."""
    Hunter(IndicatorIndex(), Sightings(MEMBER, TLP.AMBER),
           sink=TelemetryStore(root).write).run(REAL_LOGS)


def keep_generated(root: Path, days: int = 4, files_per_day: int = 3, rows: int = 400,
                   seed: int = 17) -> None:
    rnd = random.Random(seed)
    store = TelemetryStore(root)
    v4 = [f"10.9.{i}.{j}" for i in range(3) for j in range(1, 6)] + [
        "198.51.100.7", "198.51.100.8", "203.0.113.5", "203.0.113.16", "192.0.2.1"]
    v6 = ["2001:db8::7", "2001:db8::8", "fe80::1"]
    names = ["login.bad.example", "x.c2.bad.example", "bad.example", "notbad.example",
             "www.good.example", "cdn7.good.example"]
    urls = ["http://cdn7.good.example/a/dropper.exe", "http://x.c2.bad.example/stage2.ps1",
            "http://www.good.example/index.html", "http://cdn12.good.example/stage2.ps1x"]
    hashes = [f"{'a' * 31}{i}" for i in range(10)]
    for day in range(days):
        for f in range(files_per_day):
            cols: dict[str, list[Any]] = {k: [] for k in (
                "_ts", "_line", "network-traffic:src_ref.value",
                "network-traffic:dst_ref.value", "network-traffic:dst_port",
                "domain-name:value", "url:value", "file:hashes.MD5")}
            for line in range(1, rows + 1):
                cols["_ts"].append(DAY0 + day * DAY_US + rnd.randrange(DAY_US))
                cols["_line"].append(line)
                cols["network-traffic:src_ref.value"].append(rnd.choice(v4))
                # An address column also holds IPv6 and, from mapped JSON, a host name.
                cols["network-traffic:dst_ref.value"].append(
                    rnd.choice(v4 + v6 + ["login.bad.example", None]))
                cols["network-traffic:dst_port"].append(rnd.choice([80, 443, 8443]))
                cols["domain-name:value"].append(rnd.choice([*names, None]))
                cols["url:value"].append(rnd.choice([*urls, None]))
                cols["file:hashes.MD5"].append(rnd.choice(hashes + [None] * 5))
            store.write(Observations(pa.table(cols), f"gen/day{day}/file{f}.log",
                                     "jsonl"))


class _Recorded(Sightings):
    """Sightings that also keep every hit as (indicator, log file, line, time)."""

    def __init__(self) -> None:
        super().__init__(MEMBER, TLP.AMBER)
        self.all: list[tuple[str, str, int, int]] = []
        self.on_lists: set[tuple[str, str, int, int]] = set()  # met in a list-valued column

    def add(self, hit: Hit) -> None:
        key = (hit.indicator_id, hit.file, hit.line, hit.ts_us)
        self.all.append(key)
        if "[*]" in hit.field:
            self.on_lists.add(key)
        super().add(hit)


def streaming_hits(index: IndicatorIndex, logs: list[Path]) -> list[tuple[str, str, int, int]]:
    """A streaming hunt's hits over `logs`, less those met only in list-valued columns
    (DNS answers), which retro-hunts do not match (docs/detection.md, Limits)."""
    recorded = _Recorded()
    Hunter(index, recorded).run(logs)
    return sorted(h for h in recorded.all if h not in recorded.on_lists)


def hits_of(index: IndicatorIndex, root: Path, **kwargs: Any) -> list[tuple[str, str, int, int]]:
    """A retro-hunt's hits, sorted: (indicator, log file, line, time) each."""
    from shieldwall.detect.retro import retro_hunt

    recorded = _Recorded()
    hunter = Hunter(index, recorded)
    retro_hunt(root, index, hunter, kwargs.pop("since_us", ALL_TIME), **kwargs)
    hunter.finish()
    return sorted(recorded.all)


def by_indicator(hits: list[tuple[str, str, int, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for iid, *_ in hits:
        out[iid] = out.get(iid, 0) + 1
    return out


def assert_once_each(got: list[dict], want: list[dict], at_least: int) -> None:
    """The sightings of a killed and re-run retro-hunt (`got`) against those of a run never
    interrupted (`want`): each once (one per indicator and hour window), the same counts."""
    assert len(got) == len({s["id"] for s in got})
    keys = [(s["sighting_of_ref"], s["first_seen"][:13]) for s in got]
    assert len(keys) == len(set(keys))  # one sighting per indicator and hour window
    assert len(got) >= at_least

    def counts(ss: list[dict]) -> dict:
        return {(s["sighting_of_ref"], s["first_seen"], s["last_seen"]): s["count"] for s in ss}

    assert counts(got) == counts(want)
