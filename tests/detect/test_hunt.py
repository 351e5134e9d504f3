"""`shieldwall hunt` / watch / retro-hunt on real Zeek logs, sightings in a real store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
from typer.testing import CliRunner

from shieldwall.cli.main import app
from shieldwall.config import init_home
from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.sightings import Sightings
from shieldwall.detect.watch import Watcher
from shieldwall.node import Node, member_identity_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Query

DATA = Path(__file__).parents[1] / "data" / "zeek"
IP = "[ipv4-addr:value = '54.245.228.191']"
SUFFIX = "[domain-name:value LIKE '%.guyspy.com']"
MD5 = "[file:hashes.MD5 = '92bf83360b8ed10d82e38bcdcfcfa4a7']"


def ind(n: int, pattern: str) -> dict:
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-{n:012d}", "name": f"ind{n}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2010-01-01T00:00:00Z"}


def node_with(tmp_path: Path, *patterns: str) -> Path:
    home = tmp_path / "node"
    init_home(home, "cert-a", sighting_tlp="green")
    node = Node.load(home)
    from shieldwall.store import Provenance

    node.store.put_many([ind(i, p) for i, p in enumerate(patterns, 1)], Provenance("feed"))
    node.close()
    return home


def sightings_in(home: Path) -> list[dict]:
    node = Node.load(home)
    try:
        return [r.obj() for r in node.store.iter_query(Query(types=["sighting"]))]
    finally:
        node.close()


def test_hunt_cli_records_explained_sightings(tmp_path: Path) -> None:
    home = node_with(tmp_path, IP, SUFFIX, MD5, "[ipv4-addr:value = ")
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("conn.log", "dns.log", "http.log", "files.log"):
        shutil.copy(DATA / name, logs / name)
    res = CliRunner().invoke(app, ["hunt", str(logs), "--home", str(home), "--json"])
    assert res.exit_code == 0, res.output
    printed = orjson.loads(res.stdout)
    stored = {s["sighting_of_ref"]: s for s in sightings_in(home)}
    assert {s["id"] for s in printed} == {s["id"] for s in stored.values()}
    # Independently counted in the logs: 9 conn + 2 dns answers + 45 http rows carry the IP,
    # and 44 files.log rows name it in tx_hosts.
    assert stored[ind(1, IP)["id"]]["count"] == 100
    # 2 dns queries + 55 http hosts in guyspy.com, and 32 http rows whose referrer is there.
    assert stored[ind(2, SUFFIX)["id"]]["count"] == 89
    assert stored[ind(3, MD5)["id"]]["count"] == 1
    s = stored[ind(1, IP)["id"]]
    assert s["where_sighted_refs"] == [member_identity_id("cert-a")]
    # sighting_tlp is GREEN, but the indicator was stored unmarked (the node's default
    # AMBER): a sighting repeats the indicator's value, so it is never wider than it.
    assert s["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER)]
    assert s["first_seen"] == "2013-09-15T23:44:27.631940Z"
    ex = s["x_shieldwall_explanation"][0]
    assert ex["atom"] == "ipv4-addr:value = '54.245.228.191'"
    assert ex["file"].endswith("conn.log") and ex["line"] == 9
    assert ex["field"] == "network-traffic:dst_ref.value"
    assert len(s["observed_data_refs"]) == 10
    node = Node.load(home)
    od = node.store.get(s["observed_data_refs"][0]).obj()
    assert od["type"] == "observed-data" and od["object_refs"]
    node.close()
    assert "not matched" in res.stderr and "ind4" in res.stderr
    # The telemetry was kept for retro-hunts.
    assert list((home / "telemetry").glob("day=2013-09-15/*.parquet"))


def test_retro_hunt_finds_new_indicator_in_stored_telemetry(tmp_path: Path) -> None:
    home = node_with(tmp_path, MD5)
    runner = CliRunner()
    assert runner.invoke(app, ["hunt", str(DATA / "conn.log"), str(DATA / "dns.log"),
                               "--home", str(home)]).exit_code == 0
    node = Node.load(home)
    from shieldwall.store import Provenance

    node.store.put_many([ind(7, IP), ind(8, SUFFIX), ind(9, "[ipv4-addr:value ISSUBSET "
                                                           "'54.230.0.0/16']")],
                        Provenance("feed"))
    node.close()
    res = runner.invoke(app, ["hunt", "--since", "5000d", "--home", str(home), "--json"])
    assert res.exit_code == 0, res.output
    got = {s["sighting_of_ref"]: s["count"] for s in orjson.loads(res.stdout)}
    # conn 9 + dns query rows whose answers hold it are list-valued: streaming-only (doc).
    assert got[ind(7, IP)["id"]] == 9
    assert got[ind(8, SUFFIX)["id"]] == 2  # cdn. and www.guyspy.com queries in dns.log
    assert got[ind(9, "")["id"]] == 41  # conn rows with an end in 54.230.0.0/16


def test_watch_follows_growth_and_rotation(tmp_path: Path) -> None:
    index = IndicatorIndex()
    index.add(ind(1, IP))
    hunter = Hunter(index, Sightings(member_identity_id("cert-a"), TLP.AMBER))
    src = (DATA / "conn.log").read_text().splitlines(keepends=True)
    header, body = src[:8], [ln for ln in src[8:] if not ln.startswith("#")]
    log = tmp_path / "conn.log"
    log.write_text("".join(header + body[:100]) + body[100][:20])  # a half-written line
    w = Watcher(hunter, log)
    first = w.poll()
    with log.open("a") as fh:
        fh.write(body[100][20:] + "".join(body[101:200]))
    second = w.poll()
    os.rename(log, tmp_path / "conn.log.1")
    with (tmp_path / "conn.log.1").open("a") as fh:  # written before the writer reopened
        fh.write("".join(body[200:250]))
    log.write_text("".join(header + body[250:]))
    third = w.poll()
    assert first + second + third == 9
    assert hunter.stats.bad_count == 0
    lines = [e["line"] for w_ in hunter.sightings.windows.values() for e in w_.explanations]
    assert lines[0] == 9


def test_watch_reports_corrupt_lines_under_the_followed_file(tmp_path: Path) -> None:
    index = IndicatorIndex()
    index.add(ind(1, IP))
    hunter = Hunter(index, Sightings(member_identity_id("cert-a"), TLP.AMBER))
    src = (DATA / "conn.log").read_text().splitlines(keepends=True)
    header, body = src[:8], [ln for ln in src[8:] if not ln.startswith("#")]
    log = tmp_path / "conn.log"
    log.write_text("".join(header + body[:10]))
    w = Watcher(hunter, log)
    w.poll()
    with log.open("a") as fh:  # file lines 19, 20, 21: the middle one is truncated
        fh.write(body[10] + "1380000000.1\tCtrunc\n" + body[11])
    w.poll()
    assert hunter.stats.bad_count == 1
    bad = hunter.stats.bad[0]
    assert (bad.file, bad.line) == (str(log), 20)
    assert hunter.stats.events == 12


def test_host_names_in_address_fields_match_domain_indicators() -> None:
    import pyarrow as pa

    from shieldwall.detect.readers import Observations

    index = IndicatorIndex()
    index.add(ind(1, "[domain-name:value = 'evil.example']"))
    index.add(ind(2, "[domain-name:value LIKE '%.bad.example']"))
    index.add(ind(3, "[ipv4-addr:value = '192.0.2.1']"))
    table = pa.table({
        "_ts": pa.array([1_700_000_000_000_000] * 4, pa.int64()),
        "_line": pa.array([1, 2, 3, 4], pa.int64()),
        "network-traffic:dst_ref.value": ["192.0.2.1", "evil.example", "10.0.0.1", None],
        "domain-name:value": ["a.example", "b.example", "c.example", "d.example"],
        "domain-name:resolves_to_refs[*].value": pa.array(
            [[], ["192.0.2.7"], ["cdn.bad.example", "192.0.2.8"], ["evil.example"]],
            pa.list_(pa.string())),
    })
    hunter = Hunter(index, Sightings(member_identity_id("cert-a"), TLP.AMBER))
    assert hunter.feed(Observations(table, "mapped.jsonl", "jsonl")) == 4
    got = {(w.indicator_id[-1], e["line"], e["field"]) for w in hunter.sightings.windows.values()
           for e in w.explanations}
    assert got == {("1", 2, "network-traffic:dst_ref.value"),
                   ("1", 4, "domain-name:resolves_to_refs[*].value"),
                   ("2", 3, "domain-name:resolves_to_refs[*].value"),
                   ("3", 1, "network-traffic:dst_ref.value")}


def test_retro_hunt_rerun_is_idempotent_and_new_hits_update(tmp_path: Path) -> None:
    from shieldwall.detect.readers import ReadStats, read
    from shieldwall.detect.retro import TelemetryStore
    from shieldwall.store import Provenance

    home = node_with(tmp_path, MD5)
    runner = CliRunner()
    assert runner.invoke(app, ["hunt", str(DATA / "conn.log"), "--home", str(home)]).exit_code == 0
    node = Node.load(home)
    node.store.put_many([ind(7, IP)], Provenance("feed"))
    node.close()
    retro = ["hunt", "--since", "5000d", "--home", str(home), "--json"]
    first = orjson.loads(runner.invoke(app, retro).stdout)
    assert [s["count"] for s in first] == [9]
    sid = first[0]["id"]
    again = runner.invoke(app, retro)
    assert again.exit_code == 0, again.output
    assert orjson.loads(again.stdout) == []
    node = Node.load(home)
    assert len(node.store.versions(sid)) == 1
    node.close()
    # New telemetry in the same hour (stored while the indicator was not yet known): one
    # more connection to the address, 20 minutes after the last one.
    src = (DATA / "conn.log").read_text().splitlines(keepends=True)
    hit = next(ln for ln in src if not ln.startswith("#") and "54.245.228.191" in ln)
    last = max(float(ln.split("\t")[0]) for ln in src if "54.245.228.191" in ln
               and not ln.startswith("#"))
    extra = tmp_path / "conn-extra.log"
    extra.write_text("".join(src[:8]) + f"{last + 60:.6f}" + hit[hit.index("\t"):])
    store = TelemetryStore(home / "telemetry")
    for obs in read(extra, ReadStats()):
        store.write(obs)
    third = orjson.loads(runner.invoke(app, retro).stdout)
    assert [s["id"] for s in third] == [sid]
    assert third[0]["count"] == 10
    assert third[0]["last_seen"] > first[0]["last_seen"]
    assert third[0]["first_seen"] == first[0]["first_seen"]
    node = Node.load(home)
    assert len(node.store.versions(sid)) == 2
    node.close()


def test_retro_hunt_reads_telemetry_without_integer_address_columns(tmp_path: Path) -> None:
    """Telemetry written before `_ip4:` columns existed: the plan parses addresses in SQL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shieldwall.detect.readers import ReadStats, read
    from shieldwall.detect.retro import retro_hunt

    root = tmp_path / "telemetry"
    (root / "day=2013-09-15").mkdir(parents=True)
    for k, obs in enumerate(read(DATA / "conn.log", ReadStats())):
        t = obs.table.append_column("_file", pa.array([obs.source] * obs.table.num_rows))
        pq.write_table(t, root / "day=2013-09-15" / f"old-{k}.parquet")
    index = IndicatorIndex()
    index.add(ind(7, IP))
    index.add(ind(9, "[ipv4-addr:value ISSUBSET '54.230.0.0/16']"))
    sightings = Sightings(member_identity_id("cert-a"), TLP.AMBER)
    hits = retro_hunt(root, index, Hunter(index, sightings), 5000 * 86_400 * 1_000_000)
    counts = {iid[-1]: n for iid, (_, n, _) in sightings.by_indicator().items()}
    assert counts == {"7": 9, "9": 41}
    assert hits == 50
