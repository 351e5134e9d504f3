"""Telemetry on an object store: a retro-hunt reads `s3://` through Arrow's S3 filesystem.

A real S3 endpoint (moto's server) on 127.0.0.1; the telemetry kept by hunts, copied there
object by object. The retro-hunt over the bucket finds what it finds over the directory,
summary-first and by a full scan; the summaries a day lacks are built and written into the
bucket; Spark refuses an `s3://` root in one line.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shieldwall.detect import summaries
from tests.detect import retro_data as rd

PATTERNS = rd.REAL_PATTERNS + rd.GEN_PATTERNS
BUCKET = "cert-telemetry"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """A moto S3 server on 127.0.0.1 and an Arrow filesystem on it."""
    moto_server = pytest.importorskip(
        "moto.server", reason="needs moto[server] (the project's test extra)")
    import pyarrow.fs as pafs

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED")}
    os.environ.update(AWS_ACCESS_KEY_ID="shieldwall-test", AWS_SECRET_ACCESS_KEY="secret",
                      AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    try:
        fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                               region="us-east-1", access_key="shieldwall-test",
                               secret_key="secret", allow_bucket_creation=True)
        fs.create_dir(BUCKET)
        yield f"endpoint_override=127.0.0.1:{port}&scheme=http", fs
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retro-s3") / "telemetry"
    rd.keep_real(root)
    rd.keep_generated(root)
    return root


def _upload(root: Path, fs: Any, prefix: str, summaries_too: bool = True) -> int:
    n = 0
    for f in sorted(root.rglob("*.parquet")):
        rel = f.relative_to(root).as_posix()
        if not summaries_too and rel.startswith(summaries.SUMMARY_DIR):
            continue
        with fs.open_output_stream(f"{BUCKET}/{prefix}/{rel}") as out:
            out.write(f.read_bytes())
        n += 1
    return n


@pytest.mark.parametrize("summary_first", [False, True], ids=["full-scan", "summary-first"])
def test_s3_telemetry_finds_what_the_directory_finds(s3: tuple[str, Any], kept: Path,
                                                     summary_first: bool) -> None:
    query, fs = s3
    prefix = f"full-{summary_first}"
    assert _upload(kept, fs, prefix) > 10
    index = rd.index_of(PATTERNS)
    want = rd.hits_of(index, kept, summary_first=summary_first)
    got = rd.hits_of(index, f"s3://{BUCKET}/{prefix}?{query}", summary_first=summary_first)
    assert got == want
    assert len(rd.by_indicator(got)) == len(PATTERNS) - 4  # all but the two misses of each


def test_s3_days_without_summaries_are_summarised_into_the_bucket(s3: tuple[str, Any],
                                                                   kept: Path) -> None:
    """Telemetry another tool wrote in the layout, without summaries: the retro-hunt builds
    each file's summary (written into the bucket) and finds what a full scan finds."""
    import pyarrow.fs as pafs

    query, fs = s3
    prefix = "no-summaries"
    _upload(kept, fs, prefix, summaries_too=False)
    sdir = f"{BUCKET}/{prefix}/{summaries.SUMMARY_DIR}"
    sel = pafs.FileSelector(sdir, recursive=True, allow_not_found=True)
    assert not [i for i in fs.get_file_info(sel) if i.type == pafs.FileType.File]
    index = rd.index_of(PATTERNS)
    uri = f"s3://{BUCKET}/{prefix}?{query}"
    timings: dict[str, Any] = {}
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.retro import retro_hunt
    from shieldwall.detect.sightings import Sightings
    from shieldwall.stix.markings import TLP

    retro_hunt(uri, index, Hunter(index, Sightings(rd.MEMBER, TLP.AMBER)), rd.ALL_TIME,
               timings=timings)
    events = [f for d in summaries.day_dirs(kept) for f in summaries.event_files(kept, d)]
    assert timings["summarised"] == len(events)
    built = [i for i in fs.get_file_info(sel) if i.type == pafs.FileType.File]
    assert len(built) == len(events)
    # The next run finds them there and builds none; both ways find the same hits.
    assert rd.hits_of(index, uri) == rd.hits_of(index, uri, summary_first=False) \
        == rd.hits_of(index, kept, summary_first=False)


def test_spark_refuses_s3_in_one_line(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    from shieldwall.detect.engines import EngineError
    from shieldwall.detect.engines.spark_engine import SparkEngine

    with pytest.raises(EngineError, match=r"object store .* DuckDB engine.*hadoop-aws"):
        SparkEngine(None).view("events", ["bucket/x.parquet"],
                               filesystem=pafs.LocalFileSystem())


def test_hunt_since_reads_a_bucket_named_on_the_command_line(
        s3: tuple[str, Any], kept: Path, tmp_path: Path) -> None:
    """`shieldwall hunt --since ... --telemetry s3://...`, a real process: the sightings it
    stores are those of the same hunt over the directory; a scheme it cannot read and a
    missing directory are refused in one line."""
    import json
    import subprocess
    import sys

    query, fs = s3
    prefix = "cli"
    _upload(kept, fs, prefix)
    cli = str(Path(sys.executable).parent / "shieldwall")
    bundle = tmp_path / "indicators.json"
    bundle.write_text(json.dumps({"type": "bundle", "id": "bundle--" + "0" * 8 + "-0000-4000-8000-"
                                  + "0" * 12, "objects": [rd.indicator(i, p) for i, p in
                                                          enumerate(PATTERNS, 1)]}))
    found = {}
    for name, root in (("bucket", f"s3://{BUCKET}/{prefix}?{query}"), ("directory", str(kept))):
        home = tmp_path / name
        for args in (["init", "--member", "cert-test"],
                     ["import", str(bundle), "--no-warninglists"]):
            subprocess.run([cli, *args, "--home", str(home)], check=True, capture_output=True,
                           timeout=300)
        done = subprocess.run([cli, "hunt", "--since", "40000d", "--telemetry", root, "--json",
                               "--home", str(home)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        sightings = json.loads(done.stdout[done.stdout.index("["):])
        found[name] = sorted((s["sighting_of_ref"], s["count"]) for s in sightings)
    assert found["bucket"] == found["directory"]
    assert len({ref for ref, _ in found["bucket"]}) == len(PATTERNS) - 4
    for bad, why in (("hdfs://namenode/telemetry", "only a directory or s3://"),
                     (str(tmp_path / "nowhere"), "no such directory")):
        done = subprocess.run([cli, "hunt", "--since", "1d", "--telemetry", bad, "--home",
                               str(tmp_path / "directory")], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 2 and why in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
