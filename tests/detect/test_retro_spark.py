"""The retro-hunt plan on Apache Spark (`local[2]`) finds exactly what DuckDB finds.

One SparkSession for the whole test run (session-scoped fixture; the xdist group keeps these
tests on one worker, so one JVM starts). Every SQL text the runs send to Spark is explained,
and no physical plan may hold a BroadcastNestedLoopJoin: each branch is an equi-join.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from shieldwall.detect.engines import EngineError
from shieldwall.detect.engines.duckdb_engine import DuckDBEngine
from tests.detect.retro_data import (
    DAY0,
    DAY_US,
    GEN_PATTERNS,
    REAL_PATTERNS,
    assert_once_each,
    by_indicator,
    hits_of,
    index_of,
    keep_generated,
    keep_real,
)

pytestmark = pytest.mark.xdist_group("spark")


class Explained:
    """A Spark engine that explains every query it runs, keeping the physical plans."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.plans: list[str] = []

    def view(self, name: str, files: list[Path], where: str = "") -> list[str]:
        return self.inner.view(name, files, where)

    def register(self, name: str, table: pa.Table) -> None:
        self.inner.register(name, table)

    def arrow(self, sql: str) -> pa.Table:
        self.plans.append(self.inner.explain(sql))
        return self.inner.arrow(sql)

    def explain(self, sql: str) -> str:
        return self.inner.explain(sql)

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from shieldwall.detect.engines.spark_engine import SparkEngine

    try:
        # C1 only: a test run's queries are short, and the JIT's second tier would cost
        # more than it saves.
        engine = SparkEngine.start("local[2]", conf={
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"})
    except EngineError as exc:
        pytest.skip(f"Spark tests need pyspark and Java 17 "
                    f"(scripts/ensure-test-deps.sh installs them): {exc}")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retro-spark") / "telemetry"
    keep_real(root)
    keep_generated(root)
    return root


PATTERNS = REAL_PATTERNS + GEN_PATTERNS


@pytest.mark.parametrize("summary_first", [False, True], ids=["full-scan", "summary-first"])
def test_spark_finds_what_duckdb_finds(spark: Any, kept: Path, summary_first: bool) -> None:
    index = index_of(PATTERNS)
    # The summary-first run also cuts inside the generated days (summaries by last_seen,
    # events by time).
    kw: dict[str, Any] = {"summary_first": summary_first}
    if summary_first:
        kw |= {"since_us": 2 * DAY_US, "now": DAY0 + 3 * DAY_US + DAY_US // 2}
    duck = DuckDBEngine()
    try:
        want = hits_of(index, kept, engine=duck, **kw)
    finally:
        duck.close()
    explained = Explained(spark)
    got = hits_of(index, kept, engine=explained, **kw)
    assert got == want
    if summary_first:
        assert want and min(ts for *_, ts in want) >= kw["now"] - 2 * DAY_US
    else:  # all but the two misses of each list
        assert len(by_indicator(want)) == len(PATTERNS) - 4
    # The candidates (the plan) and the fetch of whole events, at the least.
    assert len(explained.plans) >= 2
    for plan in explained.plans:
        assert "== Physical Plan ==" in plan
        assert "BroadcastNestedLoopJoin" not in plan and "CartesianProduct" not in plan, plan


def test_hunt_cli_on_spark(spark: Any, tmp_path: Path) -> None:
    """`shieldwall hunt --since … --engine spark --master local[2]` (the test run's session,
    which the command finds running and leaves running)."""
    from shieldwall.cli.main import app
    from tests.detect.test_hunt import DATA, SUFFIX, ind, node_with

    home = node_with(tmp_path)
    runner = CliRunner()
    logs = [str(DATA / n) for n in ("conn.log", "dns.log", "http.log")]
    assert runner.invoke(app, ["hunt", *logs, "--home", str(home)]).exit_code == 0
    from shieldwall.node import Node
    from shieldwall.store import Provenance

    node = Node.load(home)
    node.store.put_many([ind(8, SUFFIX)], Provenance("feed"))
    node.close()
    res = runner.invoke(app, ["hunt", "--since", "5000d", "--engine", "spark", "--master",
                              "local[2]", "--home", str(home), "--json"])
    assert res.exit_code == 0, res.output
    assert sum(s["count"] for s in orjson.loads(res.stdout)) == 89
    assert spark.spark.sparkContext._jsc is not None  # still running for the other tests


def _descendants(pid: int) -> list[int]:
    """The processes under `pid` (the JVM pyspark starts is one), from /proc."""
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def _opened_under(pid: int, root: Path) -> bool:
    """Whether process `pid` holds a file under `root` open (Spark reading the telemetry)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd).startswith(str(root)):
                return True
        except OSError:
            continue
    return False


@pytest.mark.slow
def test_spark_application_killed_mid_run_reruns_without_duplicates(spark: Any,
                                                                    tmp_path: Path) -> None:
    """`kill -9` of the Spark application (the JVM of `--engine spark --master local[2]`)
    while it reads the telemetry: the command fails in one line and stores nothing; the
    re-run on Spark (and one more over the same range) leaves one sighting per indicator and
    window, with the counts of a run never interrupted."""
    from shieldwall.cli.main import app
    from tests.detect.test_hunt import node_with, sightings_in

    patterns = ("[ipv4-addr:value = '198.51.100.7']", "[domain-name:value LIKE '%.bad.example']",
                "[ipv4-addr:value ISSUBSET '10.9.0.0/16']")
    homes = {}
    for name in ("killed", "clean"):
        home = node_with(tmp_path / name, *patterns)
        keep_generated(home / "telemetry", days=4, files_per_day=3, rows=1000)
        homes[name] = home
    home = homes["killed"]
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "PYSPARK_PYTHON")}
    env["JDK_JAVA_OPTIONS"] = "-XX:TieredStopAtLevel=1"  # C1 only, as the test session
    proc = subprocess.Popen(
        [sys.executable, "-m", "shieldwall.cli.main", "hunt", "--since", "100000d",
         "--engine", "spark", "--master", "local[2]", "--home", str(home)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        cwd=Path(__file__).parents[2])
    telemetry = (home / "telemetry").resolve()
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        for pid in _descendants(proc.pid):
            if _opened_under(pid, telemetry):  # a Spark job is reading the telemetry
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
    assert killed is not None, "the Spark application was never seen reading the telemetry"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    # One line of ours (the JVM's own start-up chatter aside), no Python traceback.
    ours = [ln for ln in err.splitlines() if ln.startswith("shieldwall:")]
    assert len(ours) == 1 and ours[0].startswith("shieldwall: error: Spark failed"), err
    assert "Traceback" not in err, err
    assert sightings_in(home) == []  # killed before storing anything

    runner = CliRunner()
    # The re-run on Spark (the test run's session), and one more over the same range.
    for engine in ("spark", "duckdb"):
        res = runner.invoke(app, ["hunt", "--since", "100000d", "--engine", engine,
                                  "--home", str(home)])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["hunt", "--since", "100000d", "--home", str(homes["clean"])])
    assert res.exit_code == 0, res.output
    assert_once_each(sightings_in(home), sightings_in(homes["clean"]), at_least=4)
