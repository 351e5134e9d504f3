"""The full scan on DuckDB names events by file and row number and fetches those rows alone.

Checked against the plan spelled the older way (events named by time and line, every stored
event joined on them), on the real and the generated telemetry, with telemetry kept before
the `_ip4:` integer columns existed mixed in: the same hits, event by event.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shieldwall.detect import summaries
from shieldwall.detect.engines.duckdb_engine import DuckDBEngine
from shieldwall.detect.retro_plan import EVENT_KEYS, IP4, ROW_KEYS
from tests.detect import retro_data as rd

PATTERNS = rd.REAL_PATTERNS + rd.GEN_PATTERNS


class ByTimeAndLine(DuckDBEngine):
    """DuckDB naming events by (time, line) and joining every event on them to fetch."""

    row_keys = EVENT_KEYS


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retro-scan") / "telemetry"
    rd.keep_real(root)
    rd.keep_generated(root)
    # Half the generated files as a version before the integer columns kept them.
    files = sorted(f for d in summaries.day_dirs(root) for f in summaries.event_files(root, d)
                   if "jsonl" in f.name)
    assert len(files) >= 6
    for f in files[::2]:
        t = pq.read_table(f)
        pq.write_table(t.drop_columns([c for c in t.column_names if c.startswith(IP4)]), f)
    return root


@pytest.mark.parametrize("summary_first", [False, True], ids=["full-scan", "summary-first"])
def test_rows_by_file_and_number_find_what_time_and_line_find(kept: Path,
                                                              summary_first: bool) -> None:
    index = rd.index_of(PATTERNS)
    engine = DuckDBEngine()
    assert engine.row_keys == ROW_KEYS
    old = ByTimeAndLine()
    try:
        got = rd.hits_of(index, kept, engine=engine, summary_first=summary_first)
        want = rd.hits_of(index, kept, engine=old, summary_first=summary_first)
    finally:
        engine.close()
        old.close()
    assert got == want
    assert len(rd.by_indicator(got)) == len(PATTERNS) - 4  # all but the two misses of each list


def test_address_joins_read_the_integers_not_the_text(kept: Path) -> None:
    """An address or CIDR branch of the full scan reads the `_ip4:` column where every file
    holds one, the text only where one does not (a file kept before it existed)."""
    from shieldwall.detect.retro_plan import DUCKDB, values_sql

    col = "network-traffic:dst_ref.value"
    types = {col: "VARCHAR", IP4 + col: "BIGINT", "_ts": "BIGINT", "_line": "BIGINT"}
    ints = values_sql(DUCKDB, types, {col}, ROW_KEYS, ip=True)
    text = values_sql(DUCKDB, types, {col}, ROW_KEYS, ip=False)
    both = values_sql(DUCKDB, types, {col}, ROW_KEYS, ip=None)
    # The integers' branch, then the rest of the column (values that are not IPv4).
    assert ints.count("SELECT") == 2 and f'"{IP4}{col}" AS ip4' in ints
    assert text.count("SELECT") == 1 and f'"{IP4}{col}" IS NULL' in text
    assert both.count("SELECT") == 1 and "coalesce" in both
    engine = DuckDBEngine()
    try:
        files = [f for d in summaries.day_dirs(kept) for f in summaries.event_files(kept, d)]
        cols = engine.view("events", files)
        assert not set(ROW_KEYS) & set(cols)  # the keys are not event columns
        def addresses(ip: bool | None) -> int:
            rel = values_sql(DUCKDB, cols, {col}, ROW_KEYS, ip=ip)
            sql = f"SELECT count(*) AS n FROM {rel} v WHERE v.ip4 IS NOT NULL"
            return engine.arrow(sql).column("n")[0].as_py()

        n, m = addresses(True), addresses(None)
        assert n == m > 0
    finally:
        engine.close()
