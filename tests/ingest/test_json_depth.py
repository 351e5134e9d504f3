"""No imported file may nest JSON deeper than STIX needs (`stix.bounded_json.MAX_DEPTH`).

As an attacker would send it: a 1.2 MB bundle holding one object nested 200,000 levels
deep (streamed by ijson, which has no limit of its own: it drove `shieldwall import` to
22 GB), the same depth in a MISP event and in the vulnerability feeds, and small files
nested 100 levels (under orjson's own limit of 1,024, so parsed and stored before).
Each import runs as the analyst runs it, `shieldwall import` in a child process, under a
4 GB address-space limit and a timeout so that the test itself always ends. Asserted: one
line naming the file on stderr, a non-zero exit, the other files of the directory
imported, and what the store held before still there.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from shieldwall.config import load_config
from shieldwall.stix.bounded_json import MAX_DEPTH, DepthGuard, DepthScanner, TooDeep, loads
from shieldwall.store import Query, Store
from tests.factories import indicator

DEEP = 200_000
_LIMIT = 4 * 1024**3  # address space of the importing process: the guard, not the check


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_LIMIT, _LIMIT))


# Runs the command and reports its peak RSS on a last line of stderr.
_MEASURED = r"""
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
sys.stderr.write(f"\npeak-rss-kb {usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""
PEAK_MB = 1024  # what an import of these small files may take at most (it took 4 GB+)


def sw(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`shieldwall ARGS` as the analyst runs it; fails when it took more than `PEAK_MB`
    (a MemoryError caught on the way would otherwise hide an unbounded parse)."""
    env = dict(os.environ, SHIELDWALL_HOME=str(home), COLUMNS="200")
    r = subprocess.run([sys.executable, "-c", _MEASURED, sys.executable, "-m",
                        "shieldwall.cli.main", *args],
                       capture_output=True, text=True, env=env, timeout=180,
                       preexec_fn=_limit_memory)
    r.stderr, _, peak = r.stderr.rstrip("\n").rpartition("\npeak-rss-kb ")
    assert int(peak) < PEAK_MB * 1024, f"shieldwall {args[0]} peaked at {int(peak) >> 10} MB"
    return r


def _nested(levels: int) -> bytes:
    """`{"a": {"a": ... {} ... }}`: 5 bytes a level going in, 1 coming out."""
    return b'{"a":' * levels + b"{}" + b"}" * levels


def _bundle(*objects: bytes) -> bytes:
    return (b'{"type": "bundle", "id": "bundle--' + str(uuid.uuid4()).encode()
            + b'", "objects": [' + b",".join(objects) + b"]}")


def _deep_indicator(levels: int) -> bytes:
    """An indicator whose custom property nests `levels` deep."""
    head = orjson.dumps(indicator("203.0.113.99"))[:-1]
    return head + b', "x_payload": ' + _nested(levels) + b"}"


def _good(n: int, value: str) -> bytes:
    return _bundle(orjson.dumps(indicator(value)))


def _ids(home: Path) -> set[str]:
    store = Store.open(load_config(home).db_url)
    try:
        return {r.id for r in store.iter_query(Query(types=["indicator"]))}
    finally:
        store.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    node = tmp_path / "node"
    assert sw(node, "init", "--member", "estonia").returncode == 0
    return node


def _one_line_naming(r: subprocess.CompletedProcess[str], path: Path) -> None:
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert [line for line in lines if str(path) in line] == [
        f"shieldwall: error: {path}: JSON nested deeper than {MAX_DEPTH} levels"], lines


def test_a_deep_streamed_bundle_is_refused_and_the_rest_of_the_directory_imported(
        home: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    before.write_bytes(_good(1, "198.51.100.200"))
    assert sw(home, "import", "--no-warninglists", str(before)).returncode == 0
    held = _ids(home)
    assert len(held) == 1

    folder = tmp_path / "feeds"
    folder.mkdir()
    good_a = indicator("198.51.100.201")
    good_c = indicator("198.51.100.203")
    (folder / "a.json").write_bytes(_bundle(orjson.dumps(good_a)))
    deep = folder / "b.json"
    deep.write_bytes(_bundle(orjson.dumps(indicator("198.51.100.202")),
                             _deep_indicator(DEEP)))
    assert 1_000_000 < deep.stat().st_size < 1_400_000  # streamed: over 1 MB, a bundle
    (folder / "c.json").write_bytes(_bundle(orjson.dumps(good_c)))

    r = sw(home, "import", "--no-warninglists", str(folder))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    _one_line_naming(r, deep)
    assert _ids(home) == held | {good_a["id"], good_c["id"]}
    assert "a.json" in r.stdout and "c.json" in r.stdout


@pytest.mark.parametrize("levels", [MAX_DEPTH + 36, 2_000],
                         ids=["under orjson's own limit", "over orjson's own limit"])
def test_a_small_deep_file_is_refused_with_the_same_message(
        home: Path, tmp_path: Path, levels: int) -> None:
    path = tmp_path / "small.json"
    path.write_bytes(_bundle(_deep_indicator(levels)))
    r = sw(home, "import", "--no-warninglists", str(path))
    assert r.returncode == 2
    _one_line_naming(r, path)
    assert _ids(home) == set()


def test_format_detection_reads_a_deep_head_in_bounded_memory(
        home: Path, tmp_path: Path) -> None:
    """Sniffers read a file's first 64 KB before any reader: nested from its first bytes,
    that head alone would cost ijson's prefixes ~10 GB (65,000 levels)."""
    path = tmp_path / "deep-head.json"
    path.write_bytes(b'{"type": "bundle", "id": "bundle--' + str(uuid.uuid4()).encode()
                     + b'", "objects": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}")
    r = sw(home, "import", "--no-warninglists", str(path))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    _one_line_naming(r, path)


def test_a_bundle_as_deep_as_the_limit_is_imported(home: Path, tmp_path: Path) -> None:
    # bundle (1), objects (2), the indicator (3): the custom property may nest 61 more.
    path = tmp_path / "deep-enough.json"
    obj = _deep_indicator(MAX_DEPTH - 4)  # `_nested(n)` is n + 1 levels
    path.write_bytes(_bundle(obj))
    assert sw(home, "import", "--no-warninglists", str(path)).returncode == 0
    assert len(_ids(home)) == 1


def _misp_event(levels: int) -> bytes:
    return (b'{"Event": {"info": "deep", "uuid": "' + str(uuid.uuid4()).encode()
            + b'", "date": "2024-01-01", "published": true, "Attribute": [], "x": '
            + _nested(levels) + b"}}")


def _feeds(levels: int) -> dict[str, tuple[str, bytes]]:
    """format -> (file name, content) for each reader of outside JSON but STIX's."""
    deep = _nested(levels)
    return {
        "misp response (streamed)": ("misp", b'{"response": [' + _misp_event(levels) + b"]}"),
        "misp list (streamed)": ("misp", b"[" + _misp_event(levels) + b"]"),
        "misp event (whole)": ("misp", _misp_event(levels)),
        "osv list (streamed)": ("osv", b'[{"id": "GHSA-0000-0000-0000", "affected": '
                                b'[], "modified": "2024-01-01T00:00:00Z", "x": ' + deep
                                + b"}]"),
        "osv record (whole)": ("osv", b'{"id": "GHSA-0000-0000-0000", "affected": [], '
                               b'"modified": "2024-01-01T00:00:00Z", "x": ' + deep + b"}"),
        "kev (streamed)": ("kev", b'{"catalogVersion": "1", "vulnerabilities": [{"cveID": '
                           b'"CVE-2024-0001", "x": ' + deep + b"}]}"),
        "debian (streamed)": ("debian-security", b'{"openssl": {"CVE-2024-0001": '
                              b'{"description": "x", "x": ' + deep + b"}}}"),
    }


@pytest.mark.parametrize("case", list(_feeds(1)))
def test_every_reader_of_outside_json_refuses_depth(
        home: Path, tmp_path: Path, case: str) -> None:
    fmt, content = _feeds(DEEP)[case]
    path = tmp_path / f"{fmt}.json"
    path.write_bytes(content)
    r = sw(home, "import", "--no-warninglists", "--format", fmt, str(path))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    _one_line_naming(r, path)


# ---- the module itself ----------------------------------------------------------------


def _scan(data: bytes, limit: int, chunk: int) -> bool:
    scanner = DepthScanner(limit)
    try:
        for i in range(0, len(data), chunk):
            scanner.feed(data[i:i + chunk])
    except TooDeep:
        return False
    return True


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 65536])
def test_the_scanner_counts_only_brackets_outside_strings(chunk: int) -> None:
    # Brackets, quotes and backslashes inside strings, cut anywhere by the chunks.
    tricky = orjson.dumps({"a": ['[[[{"\\', "\\\\[", '"]]]', "é{"], "b": {"c": ["x\\\"["]}})
    assert orjson.loads(tricky)  # valid JSON, depth 3
    assert _scan(tricky, 3, chunk) and not _scan(tricky, 2, chunk)
    deep = _nested(10)  # 11 levels
    assert _scan(deep, 11, chunk) and not _scan(deep, 10, chunk)


def test_loads_and_the_guard_agree_with_orjson_on_values() -> None:
    import io

    import ijson

    doc = orjson.dumps({"objects": [indicator(), {"x": [[["]]]"]]]}]})
    assert loads(doc) == orjson.loads(doc)
    assert list(ijson.items(DepthGuard(io.BytesIO(doc)), "objects.item")) == \
        orjson.loads(doc)["objects"]
    with pytest.raises(TooDeep, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads(_nested(MAX_DEPTH))
    with pytest.raises(TooDeep):
        loads(_nested(5_000))  # orjson's own refusal, same error
    assert loads(_nested(MAX_DEPTH - 1)) is not None


# ---- telemetry readers (hunt, watch) --------------------------------------------------


def _telemetry(tmp_path: Path, name: str, records: list[dict[str, object]], deep: bytes
               ) -> Path:
    """A log of JSON lines with one deep line after the first record."""
    lines = [orjson.dumps(r) for r in records]
    lines.insert(1, deep)
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("fmt", ["zeek-json", "suricata"])
def test_a_deep_log_line_is_a_bad_line_and_the_others_are_read(
        tmp_path: Path, fmt: str) -> None:
    from shieldwall.detect.readers import ReadStats, read

    if fmt == "zeek-json":
        records: list[dict[str, object]] = [
            {"ts": 1700000000.0 + i, "uid": f"C{i}", "id.orig_h": "10.0.0.1",
             "id.orig_p": 1000 + i, "id.resp_h": f"198.51.100.{i}", "id.resp_p": 443,
             "proto": "tcp", "_path": "conn"} for i in range(3)]
        deep = b'{"ts": 1700000009.0, "uid": "Cdeep", "_path": "conn", "x": ' + \
            _nested(DEEP) + b"}"
    else:
        records = [{"timestamp": f"2024-01-01T00:00:0{i}.000000+0000", "event_type": "dns",
                    "src_ip": "10.0.0.1", "dest_ip": "10.0.0.53",
                    "dns": {"type": "query", "rrname": f"host{i}.example.com"}}
                   for i in range(3)]
        deep = b'{"timestamp": "2024-01-01T00:00:09.000000+0000", "event_type": "dns", ' \
            b'"src_ip": "10.0.0.1", "x": ' + _nested(MAX_DEPTH) + b"}"  # under orjson's own
    path = _telemetry(tmp_path, f"{fmt}.log", records, deep)
    stats = ReadStats()
    events = sum(len(o) for o in read(path, stats, fmt))
    assert events == 3
    assert [(b.line, b.reason) for b in stats.bad] == [
        (2, f"bad JSON: JSON nested deeper than {MAX_DEPTH} levels")]


def test_a_deep_stix_telemetry_file_is_refused_naming_it(tmp_path: Path) -> None:
    from shieldwall.detect.readers import ReaderError, ReadStats, read

    path = tmp_path / "observed.json"
    path.write_bytes(_bundle(_deep_indicator(MAX_DEPTH)))
    with pytest.raises(ReaderError, match=f"^{path}: JSON nested deeper than {MAX_DEPTH}"):
        list(read(path, ReadStats(), "stix"))


# ---- TAXII POST bodies -----------------------------------------------------------------


def test_a_taxii_post_nested_too_deep_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    import httpx

    from tests.taxii.conftest import add_members, make_home, start_server

    home = make_home(tmp_path)
    token = add_members(home, {"north": "ally"})["north"]
    server = start_server(home)
    try:
        def post(body: bytes) -> httpx.Response:
            return httpx.post(server.api("collections/alliance/objects/"), content=body,
                              headers={"Authorization": f"Bearer {token}",
                                       "Content-Type": "application/taxii+json;version=2.1",
                                       "Accept": "application/taxii+json;version=2.1"},
                              timeout=60)

        ok = indicator("198.51.100.77")
        for levels in (MAX_DEPTH + 36, DEEP):  # under and over orjson's own limit
            deep = b'{"objects": [' + orjson.dumps(ok) + b"," + _deep_indicator(levels) + b"]}"
            r = post(deep)
            assert r.status_code == 400, r.text
            assert r.json()["description"] == \
                f"the body is JSON nested deeper than {MAX_DEPTH} levels"
        store = Store.open(load_config(home).db_url)
        try:
            assert store.get(ok["id"]) is None
        finally:
            store.close()
        r = post(orjson.dumps({"objects": [ok]}))  # the same object, not nested: stored
        assert r.status_code == 202 and r.json()["success_count"] == 1
    finally:
        server.stop()


def test_watch_counts_a_deep_line_and_hits_on_the_next(tmp_path: Path) -> None:
    """`shieldwall watch` follows a growing EVE log: a line nested 200,000 levels is a
    bad line under the followed file's name; the indicator on the line after it hits."""
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings
    from shieldwall.detect.watch import Watcher
    from shieldwall.policy import member_identity_id
    from shieldwall.stix.markings import TLP

    index = IndicatorIndex()
    index.add(indicator("203.0.113.66", tlp=None))
    hunter = Hunter(index, Sightings(member_identity_id("cert-a"), TLP.AMBER))

    def eve(dest: str, second: int) -> bytes:
        return orjson.dumps({"timestamp": f"2024-01-01T00:00:{second:02d}.000000+0000",
                             "event_type": "flow", "src_ip": "10.0.0.1", "src_port": 5000,
                             "dest_ip": dest, "dest_port": 443, "proto": "TCP"}) + b"\n"

    log = tmp_path / "eve.json"
    log.write_bytes(eve("198.51.100.1", 1))
    w = Watcher(hunter, log)
    assert w.poll() == 0
    with log.open("ab") as fh:
        fh.write(b'{"timestamp": "2024-01-01T00:00:02.000000+0000", "event_type": "flow", '
                 b'"x": ' + _nested(DEEP) + b"}\n")
        fh.write(eve("203.0.113.66", 3))
    assert w.poll() == 1
    assert [(b.file, b.line, b.reason) for b in hunter.stats.bad] == [
        (str(log), 2, f"bad JSON: JSON nested deeper than {MAX_DEPTH} levels")]
