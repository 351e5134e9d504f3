"""What stops a retro-hunt on Spark is said in one line; a killed retro-hunt re-runs clean.

Each case runs the real `shieldwall` command in a subprocess with its environment changed:
JAVA_HOME pointing at nothing or at an old Java, `pyspark` unimportable, a `spark://`
master on a closed port. None of them starts a JVM (the checks come first), so these tests
need no Spark group.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shieldwall.detect import summaries
from tests.detect.retro_data import assert_once_each, keep_generated

SHIELDWALL = [sys.executable, "-m", "shieldwall.cli.main"]


def _home(tmp_path: Path, *patterns: str) -> Path:
    from tests.detect.test_hunt import node_with

    return node_with(tmp_path, *patterns)


def _run(home: Path, *args: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "PYSPARK_PYTHON")}
    return subprocess.run([*SHIELDWALL, "hunt", "--since", "30d", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=300,
                          env=base | (env or {}), cwd=Path(__file__).parents[2])


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("shieldwall: error: "), lines
    return lines[0]


def test_java_home_pointing_at_nothing(tmp_path: Path) -> None:
    res = _run(_home(tmp_path), "--engine", "spark",
               env={"JAVA_HOME": str(tmp_path / "no-jdk")})
    line = _one_error_line(res)
    assert "needs Java 17" in line and "no-jdk" in line


def test_java_too_old(tmp_path: Path) -> None:
    jdk = tmp_path / "jdk8" / "bin"
    jdk.mkdir(parents=True)
    (jdk / "java").write_text('#!/bin/sh\necho \'openjdk version "1.8.0_392"\' >&2\n')
    (jdk / "java").chmod(0o755)
    line = _one_error_line(_run(_home(tmp_path), "--engine", "spark",
                                env={"JAVA_HOME": str(jdk.parent)}))
    assert "Java 17 or later" in line and "is Java 8" in line


def test_pyspark_missing(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "pyspark"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'pyspark'\")\n")
    line = _one_error_line(_run(_home(tmp_path), "--engine", "spark",
                                env={"PYTHONPATH": str(shadow.parent)}))
    assert "needs pyspark==" in line


def test_master_unreachable(tmp_path: Path) -> None:
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("needs Java 17 (scripts/ensure-test-deps.sh installs it)")
    with socket.socket() as s:  # a port that was free a moment ago and is now closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _one_error_line(_run(_home(tmp_path), "--engine", "spark", "--master",
                                f"spark://127.0.0.1:{port}",
                                env={"SHIELDWALL_SPARK_CONNECT_TIMEOUT": "2"}))
    assert f"Spark master spark://127.0.0.1:{port} unreachable" in line


def test_unknown_engine(tmp_path: Path) -> None:
    assert "--engine 'flink'" in _one_error_line(_run(_home(tmp_path), "--engine", "flink"))


def _sightings(home: Path) -> list[dict]:
    from tests.detect.test_hunt import sightings_in

    return sightings_in(home)


@pytest.mark.slow
def test_killed_retro_hunt_reruns_without_duplicate_sightings(tmp_path: Path) -> None:
    """`kill -9` while the retro-hunt builds the summaries it lacks (telemetry kept before
    summaries): the re-run completes, and the store holds one sighting per (indicator,
    window), with the counts a run that was never killed records."""
    patterns = ("[ipv4-addr:value = '198.51.100.7']", "[domain-name:value LIKE '%.bad.example']")
    homes = {}
    for name in ("killed", "clean"):
        home = _home(tmp_path / name, *patterns)
        keep_generated(home / "telemetry", days=10, files_per_day=3, rows=500)
        shutil.rmtree(summaries.summary_root(home / "telemetry"))
        homes[name] = home
    home = homes["killed"]
    proc = subprocess.Popen([*SHIELDWALL, "hunt", "--since", "100000d", "--home", str(home)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).parents[2])
    sroot = summaries.summary_root(home / "telemetry")
    deadline = time.monotonic() + 240
    while not list(sroot.glob("day=*/*.parquet")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the hunt never started summarising"
        time.sleep(0.02)
    assert proc.poll() is None, "the hunt ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _sightings(home) == []  # killed before storing anything
    for _ in range(2):  # the re-run, and one more over the same range
        res = _run(home, "--since", "100000d")
        assert res.returncode == 0, res.stderr
    res = _run(homes["clean"], "--since", "100000d")
    assert res.returncode == 0, res.stderr
    assert_once_each(_sightings(home), _sightings(homes["clean"]), at_least=3)
