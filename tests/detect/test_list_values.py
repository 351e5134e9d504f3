"""Every value of a line is matched, not its first: a Zeek set or vector on a single-valued
STIX path (x509 SANs, files.log tx_hosts, ssl.log's certificate chain), the To and Cc headers
of smtp.log, and the HTTP referrer of Zeek and Suricata; in the streaming hunt (a file, a
sensor directory, watch) and in the retro-hunt over stored telemetry. A line is one sighting
observation however many of its values hit.

The logs are real sensor output (tests/data/zeek, tests/data/suricata; sources in NOTICE). The
expected counts are taken from the files here, independently of the readers. Two lines are
derived from real ones, as said where they are made: a files.log row whose tx_hosts set names
two hosts (no shipped log has one) and a Suricata EVE http event with a referrer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from shieldwall.cli.main import app
from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.readers import ReadStats, read
from shieldwall.detect.sightings import Sightings
from shieldwall.detect.watch import Watcher
from shieldwall.node import Node, member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance
from tests.detect.test_hunt import ind, node_with, sightings_in
from tests.detect.test_sensor_directory import (  # noqa: F401 (an autouse fixture)
    report_rows,
    restored,
    wide_consoles,
)

DATA = Path(__file__).parents[1] / "data"
ZEEK = DATA / "zeek"
TAB = "\t"


def hunt(home: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["hunt", *args, "--home", str(home)],
                             env={"COLUMNS": "300"})
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def sightings(home: Path) -> dict[str, dict]:
    return {s["sighting_of_ref"]: s for s in sightings_in(home)}


def counts(home: Path) -> dict[str, int]:
    return {k: s["count"] for k, s in sightings(home).items()}


def tsv_rows(path: Path) -> list[dict[str, str]]:
    """A Zeek TSV log's rows by field name, with the physical line number as `_line`."""
    lines = path.read_text().splitlines()
    fields = next(ln for ln in lines if ln.startswith("#fields")).split(TAB)[1:]
    return [dict(zip(fields, ln.split(TAB), strict=True)) | {"_line": str(n)}
            for n, ln in enumerate(lines, 1) if ln and not ln.startswith("#")]


# ---- what the logs hold, counted here -------------------------------------------------------

SAN_2 = "pipe.skype.com"  # the second SAN of x509.log's first certificate
SAN_6 = "mail.aol.de"  # the sixth SAN of json/x509.log's first certificate
AOL = "[domain-name:value LIKE '%.aol.com']"  # many SANs of one certificate each


def x509_tsv_lines(name: str) -> list[int]:
    return [int(r["_line"]) for r in tsv_rows(ZEEK / "x509.log")
            if name in r["san.dns"].split(",")]


def x509_json(pred) -> list[int]:  # type: ignore[no-untyped-def]
    lines = (ZEEK / "json" / "x509.log").read_bytes().splitlines()
    return [n for n, ln in enumerate(lines, 1) if pred(orjson.loads(ln).get("san.dns") or [])]


def test_the_second_san_of_a_certificate_is_missed_no_more(tmp_path: Path) -> None:
    lines = x509_tsv_lines(SAN_2)
    assert len(lines) == 3
    assert all(r["san.dns"].split(",").index(SAN_2) == 1 for r in tsv_rows(ZEEK / "x509.log")
               if int(r["_line"]) in lines)
    json_lines = x509_json(lambda sans: SAN_6 in sans)
    assert json_lines and all(
        orjson.loads((ZEEK / "json" / "x509.log").read_bytes().splitlines()[n - 1])
        ["san.dns"].index(SAN_6) > 0 for n in json_lines)
    home = node_with(tmp_path, f"[domain-name:value = '{SAN_2}']",
                     f"[domain-name:value = '{SAN_6}']", AOL)
    sensor = tmp_path / "sensor"
    (sensor / "json").mkdir(parents=True)
    shutil.copy(ZEEK / "x509.log", sensor / "x509.log")
    shutil.copy(ZEEK / "json" / "x509.log", sensor / "json" / "x509.log")
    rc, stdout, stderr = hunt(home, "--no-keep", str(sensor))
    assert rc == 0, stdout + stderr
    got = sightings(home)
    assert got[ind(1, "")["id"]]["count"] == 3
    assert got[ind(2, "")["id"]]["count"] == len(json_lines)
    # A certificate naming 20 aol.com hosts is one line: one observation, not twenty.
    aol_lines = x509_json(lambda sans: any(s.endswith(".aol.com") for s in sans))
    sans_hit = sum(sum(s.endswith(".aol.com") for s in orjson.loads(ln).get("san.dns") or [])
                   for ln in (ZEEK / "json" / "x509.log").read_bytes().splitlines())
    assert sans_hit > len(aol_lines) > 1
    assert got[ind(3, AOL)["id"]]["count"] == len(aol_lines)
    # Each hit is explained by the value that matched, on its own line.
    ex = got[ind(1, "")["id"]]["x_shieldwall_explanation"][0]
    assert (ex["value"], ex["field"], ex["line"]) == (SAN_2, "domain-name:value", lines[0])
    ex = got[ind(2, "")["id"]]["x_shieldwall_explanation"][0]
    assert (ex["value"], ex["line"]) == (SAN_6, json_lines[0])
    # The report counts lines, not values.
    rows = report_rows(stdout)
    assert rows["x509.log"][2] == str(len(tsv_rows(ZEEK / "x509.log")))
    assert rows["json/x509.log"][2] == "12"
    assert rows["x509.log"][3] == str(3 + 0)  # SAN_2's three lines; no aol.com there


def test_events_count_lines_not_values() -> None:
    stats = ReadStats()
    batches = list(read(ZEEK / "json" / "x509.log", stats))
    assert stats.events == 12 == sum(b.events for b in batches)
    assert sum(len(b) for b in batches) > 12  # the further SANs have rows of their own


def test_every_certificate_of_a_tls_chain_and_the_smtp_recipients(tmp_path: Path) -> None:
    ssl = restored(ZEEK / "baseline" / "ssl.log", tmp_path / "ssl.log")
    chain = [r["cert_chain_fps"].split(",") for r in tsv_rows(ssl)]
    assert len(chain[0]) == 2  # the server's certificate, then its issuer's
    smtp = restored(ZEEK / "baseline" / "smtp.log", tmp_path / "smtp.log")
    mails = tsv_rows(smtp)
    rcpt = [r["rcptto"].split(",") for r in mails]
    cc = [r["cc"].split(",") for r in mails]
    assert ["felica4uu@hotmail.com", "ericlim220@yahoo.com", "davis_mark1@outlook.com"] in rcpt
    assert ["felica4uu@hotmail.com", "davis_mark1@outlook.com"] in cc
    bdat = restored(ZEEK / "baseline" / "smtp.8bitmime.log", tmp_path / "smtp.8bitmime.log")
    lists = [r["cc"] for r in tsv_rows(bdat)]
    kernel = sum("<linux-kernel@vger.kernel.org>" in c for c in lists)
    assert kernel == 2  # `open list <...>` and `linux-kernel <...>`, never first in its Cc
    to = [r["to"].split(",") for r in tsv_rows(bdat)]
    assert any(t.index("Luis Henriques <lhenriques@suse.de>") == 1 for t in to if len(t) > 1)
    home = node_with(
        tmp_path,
        f"[x509-certificate:hashes.'SHA-256' = '{chain[0][1]}']",
        "[email-addr:value = 'davis_mark1@outlook.com']",  # 3rd envelope rcpt, 2nd Cc
        "[email-message:cc_refs[*].value = 'felica4uu@hotmail.com']",
        "[email-addr:value = 'linux-kernel@vger.kernel.org']",
        "[email-message:to_refs[*].value = 'lhenriques@suse.de']",
    )
    logs = tmp_path / "sensor"
    logs.mkdir()
    for f in (ssl, smtp, bdat):
        shutil.move(f, logs / f.name)
    rc, stdout, stderr = hunt(home, "--no-keep", str(logs))
    assert rc == 0, stdout + stderr
    got = counts(home)
    assert [got.get(ind(i, "")["id"], 0) for i in range(1, 6)] == [1, 1, 1, kernel, 1]


def test_files_log_names_every_host_it_was_sent_by(tmp_path: Path) -> None:
    # Derived from zat's files.log: the row of line 9 (its MD5 row) with the tx_hosts of a
    # row of another transfer added, the set Zeek writes when one file comes over two
    # connections from two hosts; nothing else changed.
    lines = (ZEEK / "files.log").read_text().splitlines(keepends=True)
    rows = tsv_rows(ZEEK / "files.log")
    first = rows[0]
    other = next(r["tx_hosts"] for r in rows if r["tx_hosts"] != first["tx_hosts"])
    fields = lines[8].split(TAB)
    assert fields[2] == first["tx_hosts"]
    fields[2] = f"{first['tx_hosts']},{other}"
    log = tmp_path / "files.log"
    log.write_text("".join(lines[:8]) + TAB.join(fields) + "".join(lines[9:]))
    others = sum(r["tx_hosts"] == other for r in rows)
    home = node_with(tmp_path, f"[network-traffic:src_ref.value = '{other}']",
                     "[file:hashes.MD5 = '92bf83360b8ed10d82e38bcdcfcfa4a7']")
    rc, stdout, stderr = hunt(home, "--no-keep", str(log))
    assert rc == 0, stdout + stderr
    got = sightings(home)
    assert got[ind(1, "")["id"]]["count"] == others + 1
    assert got[ind(2, "")["id"]]["count"] == 1


def http_expectations() -> tuple[int, int, int]:
    """(lines whose request URL or referrer is the guyspy home page, lines whose host or
    referrer's host is www.guyspy.com, lines whose host is)."""
    rows = tsv_rows(ZEEK / "http.log")
    home_page = "http://www.guyspy.com/"
    url_lines = sum(f"http://{r['host']}{r['uri']}" == home_page or r["referrer"] == home_page
                    for r in rows)
    host_lines = sum(r["host"] == "www.guyspy.com"
                     or r["referrer"].startswith("http://www.guyspy.com/") for r in rows)
    return url_lines, host_lines, sum(r["host"] == "www.guyspy.com" for r in rows)


def test_the_http_referrer_is_a_url_and_its_host_a_domain(tmp_path: Path) -> None:
    url_lines, host_lines, as_host = http_expectations()
    # cdn.guyspy.com, ib.adnxs.com... were reached from the home page: the referrer names it.
    assert host_lines > as_host == 44 and url_lines > 2
    home = node_with(tmp_path, "[url:value = 'http://www.guyspy.com/']",
                     "[domain-name:value = 'www.guyspy.com']")
    rc, stdout, stderr = hunt(home, "--no-keep", str(ZEEK / "http.log"))
    assert rc == 0, stdout + stderr
    got = sightings(home)
    assert [got[ind(i, "")["id"]]["count"] for i in (1, 2)] == [url_lines, host_lines]


def test_suricata_http_refer(tmp_path: Path) -> None:
    # suricata-verify's fileinfo event as the http event of the same transaction, with the
    # referrer a browser sends when the download is clicked on a search result.
    ev = orjson.loads((DATA / "suricata" / "verify-fileinfo.eve.json").read_bytes()
                      .splitlines()[0])
    ev["event_type"] = "http"
    del ev["fileinfo"]
    ev["http"]["http_refer"] = "https://www.Google.com/search?q=eicar"
    eve = tmp_path / "eve.json"
    eve.write_bytes(orjson.dumps(ev) + b"\n")
    home = node_with(tmp_path, "[url:value = 'https://www.google.com/search?q=eicar']",
                     "[domain-name:value = 'www.google.com']",
                     "[domain-name:value = 'www.eicar.org']",
                     "[url:value = 'http://www.eicar.org/download/eicar.com']")
    rc, stdout, stderr = hunt(home, "--no-keep", str(eve))
    assert rc == 0, stdout + stderr
    assert [counts(home).get(ind(i, "")["id"], 0) for i in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert report_rows(stdout)["eve.json"][2] == "1"  # one event, however many values


def test_watch_matches_every_san(tmp_path: Path) -> None:
    index = IndicatorIndex()
    index.add(ind(1, f"[domain-name:value = '{SAN_2}']"))
    hunter = Hunter(index, Sightings(member_identity_id("cert-a"), TLP.AMBER))
    log = tmp_path / "x509.log"
    shutil.copy(ZEEK / "x509.log", log)
    assert Watcher(hunter, log).poll() == 3
    assert hunter.stats.events == len(tsv_rows(ZEEK / "x509.log"))


@pytest.mark.parametrize("full", [False, True], ids=["summary-first", "full-scan"])
def test_the_retro_hunt_matches_every_value_of_stored_lines(tmp_path: Path, full: bool) -> None:
    # The telemetry is kept by a hunt with no indicator on it; the indicators come later.
    home = node_with(tmp_path, "[domain-name:value = 'not-in-these-logs.example']")
    logs = tmp_path / "sensor"
    (logs / "json").mkdir(parents=True)
    shutil.copy(ZEEK / "x509.log", logs / "x509.log")
    shutil.copy(ZEEK / "json" / "x509.log", logs / "json" / "x509.log")
    shutil.copy(ZEEK / "http.log", logs / "http.log")
    restored(ZEEK / "baseline" / "ssl.log", logs / "ssl.log")
    rc, stdout, stderr = hunt(home, str(logs))
    assert rc == 0, stdout + stderr
    url_lines, host_lines, _ = http_expectations()
    chain = tsv_rows(logs / "ssl.log")[0]["cert_chain_fps"].split(",")
    patterns = [f"[domain-name:value = '{SAN_2}']", f"[domain-name:value = '{SAN_6}']", AOL,
                "[url:value = 'http://www.guyspy.com/']", "[domain-name:value = 'www.guyspy.com']",
                f"[x509-certificate:hashes.'SHA-256' = '{chain[1]}']"]
    node = Node.load(home)
    node.store.put_many([ind(10 + i, p) for i, p in enumerate(patterns)], Provenance("feed"))
    node.close()
    rc, stdout, stderr = hunt(home, "--since", "6000d", "--json",
                              *(["--full-scan"] if full else []))
    assert rc == 0, stdout + stderr
    got = {s["sighting_of_ref"]: s for s in orjson.loads(stdout)}
    aol_lines = x509_json(lambda sans: any(s.endswith(".aol.com") for s in sans))
    want = [3, len(x509_json(lambda sans: SAN_6 in sans)), len(aol_lines), url_lines,
            host_lines, 1]
    assert [got[ind(10 + i, "")["id"]]["count"] for i in range(len(patterns))] == want
    ex = got[ind(10, "")["id"]]["x_shieldwall_explanation"][0]
    assert (ex["value"], ex["field"]) == (SAN_2, "domain-name:value")


def test_json_lines_with_a_list_on_a_single_valued_path(tmp_path: Path) -> None:
    # zat's Zeek JSON dns.log read as plain JSON lines, its `answers` mapped to an address.
    log = tmp_path / "dns.jsonl"
    shutil.copy(ZEEK / "json" / "dns.log", log)
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps({"timestamp": "ts", "fields": {
        "ipv4-addr:value": "answers", "domain-name:value": "query"}}))
    recs = [orjson.loads(ln) for ln in log.read_bytes().splitlines()]
    want = sum("69.147.64.33" in (r.get("answers") or []) for r in recs)
    assert want == 3 and all(r["answers"][0] != "69.147.64.33" for r in recs
                             if "69.147.64.33" in (r.get("answers") or []))
    home = node_with(tmp_path, "[ipv4-addr:value = '69.147.64.33']")
    rc, stdout, stderr = hunt(home, "--no-keep", "--format", "jsonl", "--mapping",
                              str(mapping), str(log))
    assert rc == 0, stdout + stderr
    assert counts(home)[ind(1, "")["id"]] == want
    assert report_rows(stdout)["dns.jsonl"][2] == str(len(recs))
