"""`shieldwall hunt DIR` on a real sensor's log directory: every file is read or skipped with a
note, damage is counted with its file and line, and the run ends with a per-file report.

The logs are real sensor output (tests/data/zeek, tests/data/suricata; sources in NOTICE). The
only files written here are damaged copies of them (a `ts` overwritten, a gzip stream cut) and
Zeek's test baselines as Zeek wrote them: without btest's first line, with a time where btest
masked it (`XXXXXXXXXX.XXXXXX`).
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from shieldwall.cli.main import app
from tests.detect.test_hunt import ind, node_with, sightings_in

DATA = Path(__file__).parents[1] / "data"
ZEEK = DATA / "zeek"
IP = "[ipv4-addr:value = '54.245.228.191']"  # conn, dns answers, http, files tx_hosts
MD5 = "[file:hashes.MD5 = '92bf83360b8ed10d82e38bcdcfcfa4a7']"  # files.log line 9
EICAR = "[domain-name:value = 'www.eicar.org']"  # suricata-verify's fileinfo event
NL = b"\n"
CONN_ROWS = sum(not ln.startswith(b"#") for ln in (ZEEK / "conn.log").read_bytes().splitlines())


@pytest.fixture(autouse=True)
def wide_consoles() -> Iterator[None]:
    """One table row per line. The CLI's consoles are made at import and keep the width
    COLUMNS had then (pytest-xdist's workers import them with 80), so COLUMNS in the
    runner's env is not enough in-process."""
    from shieldwall.cli.common import console, out

    before = out._width, console._width
    out.width = console.width = 300
    yield
    out._width, console._width = before


def hunt(home: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["hunt", *args, "--home", str(home), "--no-keep"],
                             env={"COLUMNS": "300"})
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def counts(home: Path) -> dict[str, int]:
    return {s["sighting_of_ref"]: s["count"] for s in sightings_in(home)}


def report_rows(stdout: str) -> dict[str, list[str]]:
    """The per-file table's rows by file name (the table is printed as plain columns)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().split("│")[1:-1]]
        if len(cells) == 6 and cells[0]:
            rows[cells[0]] = cells
    return rows


def with_bad_ts(src: Path, dst: Path, line: int) -> None:
    """A copy of a Zeek TSV log whose `ts` on physical line `line` is not a number."""
    lines = src.read_bytes().split(b"\n")
    fields = lines[line - 1].split(b"\t")
    fields[0] = b"1379288667.6X4367"
    lines[line - 1] = b"\t".join(fields)
    dst.write_bytes(b"\n".join(lines))


def sensor_dir(tmp: Path) -> Path:
    d = tmp / "zeek"
    d.mkdir()
    for name in ("conn.log", "dns.log", "files.log", "x509.log", "weird.log", "dhcp.log",
                 "app_stats.log", "http.log.corrupt.gz", "top_domains.csv"):
        shutil.copy(ZEEK / name, d / name)
    (d / "json").mkdir()
    for name in ("capture_loss.log", "stats.log", "loaded_scripts.log", "packet_filter.log",
                 "x509.log", "dns.log"):
        shutil.copy(ZEEK / "json" / name, d / "json" / name)
    shutil.copy(DATA / "suricata" / "verify-fileinfo.eve.json", d / "eve.json")
    return d


def test_a_sensor_directory_hunts_to_the_end_with_a_per_file_report(tmp_path: Path) -> None:
    home = node_with(tmp_path, IP, MD5, EICAR)
    d = sensor_dir(tmp_path)
    rc, stdout, stderr = hunt(home, str(d))
    rows = report_rows(stdout)
    # Every file has a row: read, cut short, or deliberately skipped, with a note.
    assert set(rows) >= {"conn.log", "dns.log", "files.log", "x509.log", "weird.log",
                         "http.log.corrupt.gz", "top_domains.csv", "json/capture_loss.log",
                         "json/stats.log", "json/loaded_scripts.log", "json/packet_filter.log",
                         "json/x509.log", "eve.json"}, stdout
    for skipped in ("json/capture_loss.log", "json/stats.log", "json/loaded_scripts.log",
                    "json/packet_filter.log", "app_stats.log", "top_domains.csv"):
        assert "skipped" in rows[skipped][5], rows[skipped]
    assert rows["json/x509.log"][1] == "zeek-json" and rows["json/x509.log"][2] == "12"
    assert rows["conn.log"][2] == f"{CONN_ROWS:,}" and rows["eve.json"][1] == "suricata"
    assert "cut" in rows["http.log.corrupt.gz"][5]
    # The good files' sightings are recorded, the cut one's read part counts too.
    got = counts(home)
    assert got[ind(2, MD5)["id"]] == 1
    assert got[ind(3, EICAR)["id"]] == 1
    # conn 9 + dns answers 2 + files tx_hosts 44 + the cut http.log's 45 rows.
    assert got[ind(1, IP)["id"]] == 9 + 2 + 44 + 45
    # A stream cut short is not a file that could not be read: exit code 1 (docs).
    assert rc == 1, stdout + stderr


def test_a_corrupt_ts_line_is_counted_and_skipped(tmp_path: Path) -> None:
    home = node_with(tmp_path, IP)
    logs = tmp_path / "logs"
    logs.mkdir()
    with_bad_ts(ZEEK / "conn.log", logs / "conn.log", 9)  # the first row holding IP
    shutil.copy(ZEEK / "dns.log", logs / "dns.log")
    rc, stdout, stderr = hunt(home, str(logs))
    assert rc == 0, stdout + stderr
    assert "conn.log:9: ts '1379288667.6X4367' is not a time" in stdout + stderr
    rows = report_rows(stdout)
    assert rows["conn.log"][2] == f"{CONN_ROWS - 1:,}" and rows["conn.log"][4] == "1"
    assert counts(home)[ind(1, IP)["id"]] == 8 + 2  # 9 conn rows less the bad one; dns


def test_a_port_that_is_not_a_number_is_a_bad_line(tmp_path: Path) -> None:
    home = node_with(tmp_path, IP)
    lines = (ZEEK / "conn.log").read_bytes().split(NL)
    fields = lines[9].split(b"\t")  # line 10, the second row holding IP
    assert fields[4] == b"54.245.228.191"
    fields[5] = b"8O"
    lines[9] = b"\t".join(fields)
    (tmp_path / "conn.log").write_bytes(NL.join(lines))
    rc, stdout, stderr = hunt(home, str(tmp_path / "conn.log"))
    assert rc == 0
    assert "conn.log:10: id.resp_p '8O' is not a number" in stdout + stderr
    assert counts(home)[ind(1, IP)["id"]] == 8


def test_a_truncated_gzip_counts_what_came_before_the_cut(tmp_path: Path) -> None:
    home = node_with(tmp_path, IP)
    raw = (ZEEK / "http.log.corrupt.gz").read_bytes()
    text = zlib.decompressobj(31).decompress(raw)  # independently: as far as zlib goes
    complete = text[:text.rfind(b"\n") + 1].split(b"\n")
    rows_before = [ln for ln in complete if ln and not ln.startswith(b"#")]
    expected_hits = sum(b"\t54.245.228.191\t" in ln for ln in rows_before)
    assert expected_hits == 45
    rc, stdout, _stderr = hunt(home, str(ZEEK / "http.log.corrupt.gz"))
    rows = report_rows(stdout)
    assert rows["http.log.corrupt.gz"][2] == f"{len(rows_before):,}"
    assert f"compressed stream cut after line {len(complete) - 1}" in \
        rows["http.log.corrupt.gz"][5] + stdout
    assert counts(home)[ind(1, IP)["id"]] == expected_hits
    assert rc == 1


def test_a_truncated_gzip_of_json_lines_counts_what_came_before_the_cut(tmp_path: Path) -> None:
    home = node_with(tmp_path, "[ipv4-addr:value = '69.147.64.34']")
    data = gzip.compress((ZEEK / "json" / "http.log").read_bytes())
    cut = tmp_path / "http.log.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    text = zlib.decompressobj(31).decompress(cut.read_bytes())
    before = text[:text.rfind(b"\n") + 1]
    rc, stdout, _ = hunt(home, str(cut))
    assert counts(home)[ind(1, "")["id"]] == before.count(b'"69.147.64.34"')
    assert report_rows(stdout)["http.log.gz"][2] == f"{before.count(NL):,}"
    assert rc == 1


def test_a_file_that_cannot_be_read_at_all_fails_the_run_but_not_the_others(
        tmp_path: Path) -> None:
    home = node_with(tmp_path, MD5)
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(ZEEK / "files.log", logs / "files.log")
    (logs / "conn.log.gz").write_bytes(b"\x1f\x8b\x08\x00garbage, not deflate")
    rc, stdout, _stderr = hunt(home, str(logs))
    rows = report_rows(stdout)
    assert "failed" in rows["conn.log.gz"][5]
    assert counts(home)[ind(1, MD5)["id"]] == 1
    assert rc == 2


def test_a_file_named_on_the_command_line_that_is_not_telemetry_is_an_error(
        tmp_path: Path) -> None:
    home = node_with(tmp_path, MD5)
    rc, stdout, stderr = hunt(home, str(ZEEK / "top_domains.csv"), str(ZEEK / "files.log"))
    assert rc == 2
    assert "not recognised" in report_rows(stdout)["top_domains.csv"][5]
    assert "shieldwall: error: top_domains.csv: format not recognised" in stderr
    assert counts(home)[ind(1, MD5)["id"]] == 1


# ---- detection gaps on real Zeek logs ------------------------------------------------------


def test_zeek_json_dns_reads_every_answer(tmp_path: Path) -> None:
    # 69.147.64.33 is never the first answer of json/dns.log; the TSV reader reads them all.
    home = node_with(tmp_path, "[ipv4-addr:value = '69.147.64.33']")
    text = (ZEEK / "json" / "dns.log").read_bytes()
    want = sum(b'"69.147.64.33"' in ln for ln in text.splitlines())
    assert want == 3
    rc, _, _ = hunt(home, str(ZEEK / "json" / "dns.log"))
    assert rc == 0
    assert counts(home)[ind(1, "")["id"]] == want


def test_files_log_hosts_are_read_tsv_and_json(tmp_path: Path) -> None:
    home = node_with(tmp_path, IP, "[ipv4-addr:value = '10.18.20.8']")
    json_tx = sum(b'"tx_hosts":["10.18.20.8"]' in ln or b'"rx_hosts":["10.18.20.8"]' in ln
                  for ln in (ZEEK / "json" / "files.log").read_bytes().splitlines())
    rc, _, _ = hunt(home, str(ZEEK / "files.log"), str(ZEEK / "json" / "files.log"))
    assert rc == 0
    got = counts(home)
    assert got[ind(1, IP)["id"]] == 44
    assert got[ind(2, "")["id"]] == json_tx > 0


def as_written(src: Path, dst: Path) -> Path:
    """A Zeek btest baseline as Zeek wrote it: without btest's first line (`### BTest
    baseline data ...`)."""
    dst.write_bytes(src.read_bytes().split(b"\n", 1)[1])
    return dst


def restored(src: Path, dst: Path) -> Path:
    """... and with a time where btest masked it (`XXXXXXXXXX.XXXXXX`)."""
    as_written(src, dst)
    dst.write_bytes(dst.read_bytes().replace(b"XXXXXXXXXX.XXXXXX", b"1300475167.096535"))
    return dst


@pytest.mark.parametrize("name", ["scope_sep.conn.log", "field_name_map.conn.log"])
def test_renamed_zeek_fields_are_matched(tmp_path: Path, name: str) -> None:
    # `Log::default_scope_sep = "_"` (id_orig_h) and a `field_name_map` (src, dst).
    home = node_with(tmp_path, "[ipv4-addr:value = '208.80.152.3']",
                     "[network-traffic:dst_port = 53 AND network-traffic:dst_ref.value = "
                     "'141.142.2.2']")
    log = restored(ZEEK / "baseline" / name, tmp_path / "conn.log")
    rc, stdout, stderr = hunt(home, str(log))
    assert rc == 0, stdout + stderr
    got = counts(home)
    assert got[ind(1, "")["id"]] == 6  # counted in the baseline: 6 rows, all to port 80
    assert got[ind(2, "")["id"]] == 14  # 14 rows to 141.142.2.2 port 53


def test_masked_baseline_times_are_bad_lines_not_a_crash(tmp_path: Path) -> None:
    home = node_with(tmp_path, "[ipv4-addr:value = '208.80.152.3']")
    log = as_written(ZEEK / "baseline" / "scope_sep.conn.log", tmp_path / "scope_sep.conn.log")
    rc, stdout, stderr = hunt(home, str(log))
    assert rc == 0, stdout + stderr
    row = report_rows(stdout)["scope_sep.conn.log"]
    assert row[2] == "0" and row[4] == "34"


def test_unmapped_address_columns_are_named(tmp_path: Path) -> None:
    # dhcp.log's `assigned_ip` (type addr) is matched; a renamed address field Shieldwall
    # cannot place is named in the report, not silently dropped.
    home = node_with(tmp_path, "[ipv4-addr:value = '192.168.33.10']")
    log = tmp_path / "conn.log"
    text = restored(ZEEK / "baseline" / "field_name_map.conn.log", log).read_bytes()
    log.write_bytes(text.replace(b"\tsrc\t", b"\toriginator\t"))
    rc, stdout, _stderr = hunt(home, str(log), str(ZEEK / "dhcp.log"))
    assert rc == 0
    assert "originator" in report_rows(stdout)["conn.log"][5]
    assert counts(home)[ind(1, "")["id"]] == 2


def test_suricata_verify_fileinfo_event(tmp_path: Path) -> None:
    home = node_with(tmp_path, EICAR, "[url:value = 'http://www.eicar.org/download/eicar.com']")
    rc, _, _ = hunt(home, str(DATA / "suricata" / "verify-fileinfo.eve.json"))
    assert rc == 0
    got = counts(home)
    assert got[ind(1, EICAR)["id"]] == 1 and got[ind(2, "")["id"]] == 1


def test_json_report_keeps_stdout_json(tmp_path: Path) -> None:
    home = node_with(tmp_path, MD5)
    res = CliRunner().invoke(app, ["hunt", str(ZEEK / "files.log"), str(ZEEK / "json"),
                                   "--home", str(home), "--no-keep", "--json"],
                             env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert len(orjson.loads(res.stdout)) == 1
    assert "stats.log" in res.stderr and "skipped" in res.stderr


def test_files_log_of_zeek_5_has_its_connection(tmp_path: Path) -> None:
    # Zeek 5 and later log the connection (`id.*`) in files.log instead of tx/rx_hosts.
    home = node_with(tmp_path, "[ipv4-addr:value = '74.125.239.129']",
                     "[file:hashes.MD5 = '7af07aca6d5c6e8e87fe4bb34786edc0']")
    log = restored(ZEEK / "baseline" / "files.log", tmp_path / "files.log")
    rows = [ln for ln in log.read_bytes().splitlines() if not ln.startswith(b"#")]
    rc, _, _ = hunt(home, str(log))
    assert rc == 0
    got = counts(home)
    assert got[ind(1, "")["id"]] == sum(b"\t74.125.239.129\t" in ln for ln in rows) == 6
    assert got[ind(2, "")["id"]] == sum(b"7af07aca6d5c6e8e87fe4bb34786edc0" in ln
                                        for ln in rows) == 2


def test_suricata_app_layer_fields_of_every_event_type(tmp_path: Path) -> None:
    # verify-checks.eve.json holds the fields suricata-verify asserts on Suricata's output
    # (smtp, fileinfo over SMTP, tls, dhcp, an alert with DNS metadata, an alert with an
    # email From header); no timestamp, so the format is named.
    home = node_with(
        tmp_path,
        "[email-addr:value = 'test@wut.com']",  # smtp.rcpt_to of the smtp and fileinfo events
        "[email-addr:value = 'toto@gmail.com']",  # email.from `toto <toto@gmail.com>`
        "[domain-name:value = 'suricata.io']",  # an alert's dns.query[0].rrname
        "[domain-name:value = 'raw.githubusercontent.com']",  # tls.sni
        "[x509-certificate:hashes.'SHA-1' = 'ccaa484866460e91532c9c7c232ab1744d299d33']",
        "[email-message:from_ref.value = 'blah@smtp.lab.com']",
    )
    rc, _, _ = hunt(home, "--format", "suricata",
                    str(DATA / "suricata" / "verify-checks.eve.json"))
    assert rc == 0
    got = counts(home)
    assert [got.get(ind(i, "")["id"], 0) for i in range(1, 7)] == [2, 1, 1, 1, 1, 2]


def test_watch_reads_a_zeek_json_log_by_its_name(tmp_path: Path) -> None:
    # zat's JSON logs carry no `_path`: the followed file's name says it is dns.log.
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings
    from shieldwall.detect.watch import Watcher
    from shieldwall.node import member_identity_id
    from shieldwall.stix.markings import TLP

    index = IndicatorIndex()
    index.add(ind(1, "[domain-name:value = 'mail.aol.com']"))
    hunter = Hunter(index, Sightings(member_identity_id("cert-a"), TLP.AMBER))
    log = tmp_path / "dns.log"
    shutil.copy(ZEEK / "json" / "dns.log", log)
    want = sum(b'"query":"mail.aol.com"' in ln for ln in log.read_bytes().splitlines())
    assert want > 0
    assert Watcher(hunter, log).poll() == want


def test_other_zeek_logs_a_sensor_writes(tmp_path: Path) -> None:
    # Zeek's own baselines: intel.log (what Zeek's Intel framework saw: an email address, a
    # certificate's SHA-1, a domain), software.log (`host`), ssl.log (`cert_chain_fps`),
    # smtp.log (the From header's address, `x_originating_ip` absent here).
    home = node_with(
        tmp_path,
        "[email-addr:value = 'jan.grashoefer@gmail.com']",
        "[x509-certificate:hashes.'SHA-1' = '2c322ae2b7fe91391345e070b63668978bb1c9da']",
        "[domain-name:value = 'www.pantz.org']",
        "[ipv4-addr:value = '127.0.0.1']",
        "[x509-certificate:hashes.'SHA-256' = "
        "'a580247a25324adf4add5af648de4ac5798030dfd622f26a5f2280d7528ae244']",
        "[email-addr:value = 'gurpartap@patriots.in']",
        # From `Andy Shevchenko <andy.shevchenko@gmail.com>`, sent by a mailing list
        "[email-addr:value = 'andy.shevchenko@gmail.com']",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("intel.smtp.log", "intel-all.certs.log", "software.log", "ssl.log",
                 "smtp.log", "smtp.8bitmime.log"):
        restored(ZEEK / "baseline" / name, logs / name)
    rc, stdout, stderr = hunt(home, str(logs))
    assert rc == 0, stdout + stderr
    got = counts(home)
    # Counted in the baselines: 1 intel row; 3 cert-hash rows; 1 domain row; 4 software rows;
    # 1 ssl row; smtp: the first mail's sender; a From header whose envelope sender
    # (linux-kernel-owner@vger.kernel.org) differs.
    assert [got.get(ind(i, "")["id"], 0) for i in range(1, 8)] == [1, 3, 1, 4, 1, 1, 1]
    # smtp.log's `path` (the Received hops) is an address column no STIX path holds: named.
    assert "path" in report_rows(stdout)["smtp.log"][5]
