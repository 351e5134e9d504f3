"""Readers on real Zeek logs (from the zat distribution, see NOTICE)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from shieldwall.detect.readers import ReaderError, ReadStats, detect_format, read

DATA = Path(__file__).parents[1] / "data" / "zeek"


def _all(path: Path, stats: ReadStats | None = None):
    stats = stats or ReadStats()
    return [o for o in read(path, stats)], stats


@pytest.mark.parametrize(("name", "kind", "rows"), [
    ("conn.log", "zeek.conn", 360), ("dns.log", "zeek.dns", 54), ("http.log", "zeek.http", 150),
    ("ssl.log", "zeek.ssl", 37), ("x509.log", "zeek.x509", 13), ("files.log", "zeek.files", 113),
    ("smtp.log", "zeek.smtp", 3), ("notice.log", "zeek.notice", 2),
    ("json/conn.log", "zeek.conn", 50), ("json/dns.log", "zeek.dns", 50),
    ("json/http.log", "zeek.http", 28), ("json/ssl.log", "zeek.ssl", 50),
])
def test_every_log_type_reads_with_its_rows(name: str, kind: str, rows: int) -> None:
    batches, stats = _all(DATA / name)
    assert {b.kind for b in batches} == {kind}
    assert sum(b.events for b in batches) == rows == stats.events
    assert stats.bad_count == 0


def test_conn_row_as_stix_paths_and_observed_data() -> None:
    (obs,), _ = _all(DATA / "conn.log")
    row = obs.row(0)
    assert row["network-traffic:src_ref.value"] == "192.168.33.10"
    assert row["network-traffic:dst_ref.value"] == "54.245.228.191"
    assert row["network-traffic:dst_port"] == 80
    assert row["_ts"] == 1379288667706265
    assert row["_line"] == 9  # eight header lines
    od = obs.observed_data(0)
    objs = od["objects"]
    assert objs["0"]["type"] == "network-traffic"
    assert objs[objs["0"]["dst_ref"]] == {"type": "ipv4-addr", "value": "54.245.228.191"}
    assert od["first_observed"] == "2013-09-15T23:44:27.706265Z"


def test_dns_answers_http_url_files_hashes() -> None:
    (dns,), _ = _all(DATA / "dns.log")
    assert dns.row(1)["domain-name:resolves_to_refs[*].value"] == ["guyspy.com", "54.245.228.191"]
    (http,), _ = _all(DATA / "http.log")
    assert http.row(0)["url:value"] == "http://guyspy.com/"
    (files,), _ = _all(DATA / "files.log")
    assert files.row(0)["file:hashes.MD5"] == "92bf83360b8ed10d82e38bcdcfcfa4a7"


def test_gzip_reads_the_same_rows() -> None:
    plain, _ = _all(DATA / "http.log")
    gz, _ = _all(DATA / "http.log.gz")
    assert plain[0].table.equals(gz[0].table)


def test_corrupt_lines_are_counted_and_skipped_with_line_numbers(tmp_path: Path) -> None:
    lines = (DATA / "conn.log").read_text().splitlines(keepends=True)
    lines[20] = "1379288670.1\tCabc\t10.0.0.1\n"  # truncated
    lines[30] = lines[30].replace("\t", "\t\t", 1)  # one field too many
    bad = tmp_path / "conn.log"
    bad.write_text("".join(lines))
    batches, stats = _all(bad)
    assert sum(len(b) for b in batches) == 358
    assert [(b.line, b.reason.split(",")[0]) for b in stats.bad] == [
        (21, "expected 20 fields"), (31, "expected 20 fields")]
    # Line numbers of the rows after the bad ones still point at the right lines.
    table = batches[0].table
    assert table.column("_line").to_pylist()[11:14] == [20, 22, 23]
    assert table.column("_line").to_pylist()[19:22] == [29, 30, 32]


def test_binary_file_is_refused(tmp_path: Path) -> None:
    elf = tmp_path / "capture.pcap"
    elf.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(range(256)) * 10)
    with pytest.raises(ReaderError, match="binary file, not a log"):
        list(read(elf, ReadStats()))
    gz = tmp_path / "x.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(b"\x00\x01\x02" * 100)
    with pytest.raises(ReaderError, match="binary"):
        detect_format(gz)


def test_zeek_json_corrupt_line(tmp_path: Path) -> None:
    p = tmp_path / "dns.log"
    shutil.copy(DATA / "json" / "dns.log", p)
    with p.open("a") as fh:
        fh.write('{"ts":1575413200.1,"uid":"Cx","query":"trunc\n')
    batches, stats = _all(p)
    assert sum(len(b) for b in batches) == 50
    assert stats.bad[0].line == 51 and "bad JSON" in stats.bad[0].reason
