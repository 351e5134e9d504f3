"""Summary-first retro-hunts find exactly what a full scan finds (DuckDB).

Both run over the same kept telemetry, real (tests/data) and generated, with every pattern
shape the plan treats apart: equality (strings and IPv4 integers, IPv6), CIDR, domain
suffixes, MATCHES, general LIKE, OR, AND within an observation, and patterns over several
observations (AND, FOLLOWEDBY). The hits are compared one by one: indicator, log file, line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shieldwall.detect import summaries
from tests.detect.retro_data import (
    DAY0,
    DAY_US,
    GEN_PATTERNS,
    REAL_LOGS,
    REAL_PATTERNS,
    by_indicator,
    hits_of,
    index_of,
    indicator,
    keep_generated,
    keep_real,
    streaming_hits,
)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retro") / "telemetry"
    keep_real(root)
    keep_generated(root)
    return root


@pytest.mark.parametrize("patterns", [REAL_PATTERNS, GEN_PATTERNS], ids=["real", "generated"])
def test_summary_first_equals_full_scan(kept: Path, patterns: list[str]) -> None:
    index = index_of(patterns)
    full = hits_of(index, kept, summary_first=False)
    first = hits_of(index, kept, summary_first=True)
    assert first == full
    # Every shape found something (the last two patterns of each list find nothing by
    # design), so the equality above compares hits, not two empty lists.
    counts = by_indicator(full)
    found = [indicator(i, p)["id"] in counts for i, p in enumerate(patterns, 1)]
    assert found == [True] * (len(patterns) - 2) + [False, False], counts


def test_real_hits_are_the_streaming_hunts(kept: Path) -> None:
    """On the real logs, the retro-hunt's hits are the streaming hunt's, hit for hit (file,
    line), but for those met only in DNS answers (list-valued: streaming only). Patterns
    over several observations are left out here: a streaming hit of theirs names the first
    candidate of its row, which may be a DNS answer where the retro-hunt names the query."""
    index = index_of([p if "] AND [" not in p else "[file:name = 'not-here']"
                      for p in REAL_PATTERNS])
    real = [h for h in hits_of(index, kept) if not h[1].startswith("gen/")]
    assert real == streaming_hits(index, REAL_LOGS)
    assert by_indicator(real)[indicator(3, REAL_PATTERNS[2])["id"]] == 89  # 87 http + 2 dns


def test_summary_first_reads_only_the_days_and_files_that_hit(kept: Path) -> None:
    index = index_of(["[ipv4-addr:value = '198.51.100.7']"])
    t: dict = {}
    hits_of(index, kept, timings=t)
    assert t["summary_hits"] >= 1
    # The address is planted in the generated files only (3 a day for 4 days), never in
    # the real logs' day, which holds 10 files.
    assert 0 < t["drill_files"] <= 12


def test_since_cuts_the_same_way(kept: Path) -> None:
    """A cutoff inside the generated days: summaries prune by last_seen, the events by time."""
    index = index_of(GEN_PATTERNS)
    now = DAY0 + 3 * DAY_US + DAY_US // 2
    kw = {"since_us": 2 * DAY_US, "now": now}
    full = hits_of(index, kept, summary_first=False, **kw)
    assert full and full == hits_of(index, kept, summary_first=True, **kw)
    assert min(ts for *_, ts in full) >= now - 2 * DAY_US


def test_lazy_summaries_and_compaction(kept: Path, tmp_path: Path) -> None:
    """Telemetry kept without summaries is summarised by the retro-hunt that needs it;
    compaction merges a day into one file (sources capped: then the whole day is read)
    and the hits do not change."""
    root = tmp_path / "telemetry"
    shutil.copytree(kept, root)
    shutil.rmtree(summaries.summary_root(root))
    index = index_of(GEN_PATTERNS)
    want = hits_of(index, kept, summary_first=False)
    t: dict = {}
    assert hits_of(index, root, timings=t) == want
    assert t["summarised"] == len(list(root.glob("day=*/*.parquet")))
    t = {}
    hits_of(index, root, timings=t)
    assert t["summarised"] == 0
    day = "day=2024-03-18"
    assert summaries.compact(root, day) == 3
    [merged] = (summaries.summary_root(root) / day).glob("*.parquet")
    table = pq.read_table(merged)
    assert table.num_rows == len(set(zip(table.column("type").to_pylist(),
                                         table.column("value").to_pylist(), strict=True)))
    assert max(len(s) for s in table.column("sources").to_pylist()) == 3
    assert hits_of(index, root) == want
    old = summaries.MAX_SOURCES
    try:  # a summary that keeps no sources drills into the whole day
        summaries.MAX_SOURCES = 2
        shutil.rmtree(summaries.summary_root(root))
        summaries.ensure(root, summaries.day_dirs(root))
        summaries.compact(root, day)
        [merged] = (summaries.summary_root(root) / day).glob("*.parquet")
        assert pq.read_table(merged).column("sources").null_count > 0
        assert hits_of(index, root) == want
    finally:
        summaries.MAX_SOURCES = old


def test_hunt_keeps_summaries_and_telemetry_summarise_compacts(tmp_path: Path) -> None:
    from shieldwall.cli.main import app
    from shieldwall.node import Node
    from shieldwall.store import Provenance
    from tests.detect.test_hunt import DATA, MD5, SUFFIX, ind, node_with

    home = node_with(tmp_path, MD5)
    runner = CliRunner()
    logs = [str(DATA / n) for n in ("conn.log", "dns.log", "http.log")]
    assert runner.invoke(app, ["hunt", *logs, "--home", str(home)]).exit_code == 0
    root = home / "telemetry"
    raw = sorted(p.relative_to(root).as_posix() for p in root.glob("day=*/*.parquet"))
    _, covers, types = summaries.covered(root, "day=2013-09-15")
    assert sorted(covers) == raw and "domain-name:value" in types
    res = runner.invoke(app, ["telemetry", "summarise", "--home", str(home)])
    assert res.exit_code == 0, res.output
    assert "3 summary files merged" in res.output
    assert len(list(summaries.summary_root(root).glob("day=*/*.parquet"))) == 1
    node = Node.load(home)
    node.store.put_many([ind(8, SUFFIX)], Provenance("feed"))
    node.close()
    res = runner.invoke(app, ["hunt", "--since", "5000d", "--home", str(home), "--json"])
    assert res.exit_code == 0, res.output
    # 87 http hosts and 2 dns queries (the same hits as a streaming hunt, above).
    assert sum(s["count"] for s in orjson.loads(res.stdout)) == 89
    # A full scan recounts the same hits: merged with the stored sightings, nothing new.
    res = runner.invoke(app, ["hunt", "--since", "5000d", "--full-scan", "--home", str(home),
                              "--json"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "[]"


def test_a_file_on_disk_is_summarised_as_when_it_was_written(kept: Path) -> None:
    """The lazy summariser (DuckDB, streamed) and the writer's (Arrow, in memory) agree."""
    for raw in sorted(kept.glob("day=*/*.parquet"))[:6]:
        rel = raw.relative_to(kept).as_posix()
        day = raw.parent.name.removeprefix("day=")
        keys = [("type", "ascending"), ("value", "ascending")]
        a = summaries.summarise(pq.read_table(raw), day, rel).sort_by(keys)
        b = summaries.summarise_file(raw, day, rel).sort_by(keys)
        assert a.num_rows > 0 and a.equals(b), raw
