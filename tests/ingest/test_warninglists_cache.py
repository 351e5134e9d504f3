"""The warning-list index cache: built once, reused, rebuilt when its sources change or it is
damaged, safe with concurrent builders, and answering exactly as the index built in memory."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shieldwall.ingest import defang as d
from shieldwall.ingest import warninglist_cache as wlc
from shieldwall.ingest import warninglists as wl
from shieldwall.ingest.runner import import_file
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
from tests.factories import indicator

# Real MISP lists, at least one of each type (string, hostname, substring, regex, cidr v4/v6).
LISTS = ["public-dns-v4", "public-dns-v6", "amazon-aws", "cisco_top1000", "google",
         "empty-hashes", "disposable-email", "common-contact-emails", "rfc1918", "tlds",
         "phone_numbers", "automated-malware-analysis", "digitalside", "rfc3849",
         "microsoft-attack-simulator", "rfc6761"]


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    """A lists directory of our own (its files can be changed), copied from the package."""
    root = tmp_path / "lists"
    for name in LISTS:
        shutil.copytree(d.misp_lists_dir() / name, root / name)
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _index_file(cache: Path) -> Path:
    (found,) = cache.glob("warninglists-*.idx")
    return found


def _values(root: Path) -> list[str]:
    """Entries of every list, written several ways, and values on none."""
    out = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "52.95.245.17", "10.20.30.40",
           "10.1.0.0/16", "10.0.0.0/7", "google.com", "GOOGLE.com", "mail.google.com",
           "https://www.google.com/x", "hxxps://www.google[.]com/x", "com",
           "D41D8CD98F00B204E9800998ECF8427E", "someone@0815.ru", "abuse@evil-c2.net",
           "185.220.101.4", "evil-c2-unlisted.net", "https://evil-c2-unlisted.net/gate.php",
           "0749bae92ca336a02c83d126e04ec628", "ops@evil-c2-unlisted.net", "not an ioc",
           "+33 1 23 45 67 89", "2001:db8::1", "example.", "x.localhost"]
    for path in sorted(root.glob("*/list.json")):
        entries = [e for e in json.loads(path.read_text())["list"] if isinstance(e, str)]
        for entry in entries[:: max(1, len(entries) // 25)]:
            entry = entry.strip()
            out += [entry, entry.upper(), f"sub.{entry.lstrip('.')}",
                    f"http://{entry.lstrip('.')}/p", f"user@{entry.lstrip('.')}"]
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            out += [str(net.network_address), str(net.broadcast_address)]
    return out


def test_lookups_through_the_cache_equal_the_index_built_in_memory(
        lists: Path, cache: Path) -> None:
    built = wl.WarningIndex(wl.load_lists(lists))
    cached = wlc.open_index(lists, cache)
    assert isinstance(cached, wlc._CachedIndex)
    values = _values(lists)
    hits = 0
    for value in values:
        assert cached.check(value) == built.check(value), value
        for kind in d.KINDS:
            expected = built.check(value, kind)
            assert cached.check(value, kind) == expected, (value, kind)
            hits += bool(expected)
    assert hits > 200  # the comparison is not between two empty answers
    # Every stored key passes the maps' filters (a filter that hid one would drop a hit).
    for name in ("_exact", "_hostname"):
        table, mapped = getattr(built, name), getattr(cached, name)
        assert len(table) > 100
        assert all(mapped.get(key) == wl._ids(found) for key, found in table.items()), name
    ind = indicator(pattern="[ipv4-addr:value = '8.8.8.8'] OR [url:value = "
                            "'https://mail.google.com/x'] OR [email-addr:value = 'a@0815.ru']")
    assert cached.check_indicator(ind) == built.check_indicator(ind)
    assert {name for name, _ in cached.check_indicator(ind)} >= {
        "List of known IPv4 public DNS resolvers", "List of known google domains",
        "List of disposable email domains"}


def test_the_cache_is_built_once_and_reused(lists: Path, cache: Path) -> None:
    before = wlc.builds
    first = wlc.open_index(lists, cache)
    assert wlc.builds == before + 1
    path = _index_file(cache)
    stat = path.stat()
    second = wlc.open_index(lists, cache)
    assert wlc.builds == before + 1  # read, not rebuilt
    assert isinstance(second, wlc._CachedIndex)
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_ino == stat.st_ino
    assert second.check("8.8.8.8") == first.check("8.8.8.8") != []
    assert oct(cache.stat().st_mode & 0o777) == oct(0o700)
    assert path.stat().st_mode & 0o077 == 0


def test_a_changed_list_gives_a_new_cache(lists: Path, cache: Path) -> None:
    wlc.open_index(lists, cache)
    old = _index_file(cache)
    assert wlc.open_index(lists, cache).check("evil-c2-unlisted.net", d.DOMAIN) == []
    path = lists / "cisco_top1000" / "list.json"
    data = json.loads(path.read_text())
    data["list"].append("evil-c2-unlisted.net")
    path.write_text(json.dumps(data))
    before = wlc.builds
    index = wlc.open_index(lists, cache)
    assert wlc.builds == before + 1
    assert "Top 1000 websites from Cisco Umbrella" in {
        name for name, _ in index.check("evil-c2-unlisted.net", d.DOMAIN)}
    assert _index_file(cache) != old and not old.exists()  # the stale file is removed


def test_another_package_version_gives_a_new_cache(
        lists: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wlc.open_index(lists, cache)
    old = _index_file(cache)
    monkeypatch.setattr(wlc, "_package_version", lambda _: "pymispwarninglists-99.0.dist-info")
    before = wlc.builds
    wlc.open_index(lists, cache)
    assert wlc.builds == before + 1
    assert _index_file(cache) != old


@pytest.mark.parametrize("damage", ["truncate", "empty", "header", "metadata"])
def test_a_damaged_cache_file_is_rebuilt(lists: Path, cache: Path, damage: str) -> None:
    wlc.open_index(lists, cache)
    path = _index_file(cache)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "header":
        data[0] ^= 0xFF
    else:
        data[wlc._HEADER.size + 10] ^= 0x01
    path.write_bytes(bytes(data))
    before = wlc.builds
    index = wlc.open_index(lists, cache)
    assert wlc.builds == before + 1
    assert isinstance(index, wlc._CachedIndex)
    assert "List of known IPv4 public DNS resolvers" in {n for n, _ in index.check("8.8.8.8")}


def test_a_damaged_block_is_found_when_read_and_the_index_rebuilt(
        lists: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Damage to the body is found by the CRC of the block a lookup reads; `check` then
    answers from a rebuilt index, as if nothing had happened."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(wl, "_lists_dir", lambda: lists)
    wl.default_index.cache_clear()
    try:
        expected = wl.WarningIndex(wl.load_lists(lists)).check("mail.google.com")
        assert expected
        index = wl.default_index()
        assert isinstance(index, wlc._CachedIndex)
        path = _index_file(cache / "shieldwall")
        with open(path, "r+b") as fh:  # one byte in every block of the body, under the map
            for at in range(index._file.start + 100, path.stat().st_size, wlc._BLOCK):
                fh.seek(at)
                byte = fh.read(1)
                fh.seek(at)
                fh.write(bytes([byte[0] ^ 0x01]))
        with pytest.raises(wl.CorruptIndex):
            index.check("mail.google.com")
        assert not path.exists()  # the damaged file is gone
        before = wlc.builds
        assert wl.check("mail.google.com") == expected
        assert wlc.builds == before + 1
    finally:
        wl.default_index.cache_clear()


_BUILD = """
import sys
from pathlib import Path
from shieldwall.ingest import warninglist_cache as c
index = c.open_index(Path(sys.argv[1]), Path(sys.argv[2]))
assert index.check("8.8.8.8")
print(c.builds)
"""


def test_concurrent_builders_build_once_and_leave_one_valid_file(
        lists: Path, cache: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(lists), str(cache)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert sorted(int(out) for out, _ in results) == [0, 1]  # one built, one waited and read
    assert [p.name for p in cache.iterdir() if p.name != "warninglists.lock"] == [
        _index_file(cache).name]  # no temporary file left
    before = wlc.builds
    index = wlc.open_index(lists, cache)
    assert wlc.builds == before
    assert index.check("8.8.8.8") == wl.WarningIndex(wl.load_lists(lists)).check("8.8.8.8")


def test_a_directory_others_may_write_is_not_used(lists: Path, cache: Path) -> None:
    cache.mkdir()
    os.chmod(cache, 0o777)
    index = wlc.open_index(lists, cache)
    assert not isinstance(index, wlc._CachedIndex)
    assert list(cache.glob("warninglists-*")) == []
    assert "List of known IPv4 public DNS resolvers" in {n for n, _ in index.check("8.8.8.8")}


def test_a_large_import_flags_the_same_indicators_in_worker_and_writer(tmp_path: Path) -> None:
    """A large import checks every other indicator in the writer: all are still checked."""
    index = wl.WarningIndex(wl.load_lists(only=["public-dns-v4", "rfc1918"]))
    objects = [indicator(ip)
               for ip in ["8.8.8.8", "10.1.2.3", "185.220.101.4", "1.1.1.1", "192.168.0.1"] * 3]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--0f0d3b5e-2b5b-4e61-9d0b-"
                                "0c3a1f7e7a10", "objects": objects}))
    flagged = []
    for parallel in (False, True):
        store = Store.open(f"sqlite:///{tmp_path / f'{parallel}.db'}")
        report = import_file(store, path, source="alpha", producer={}, default_tlp=TLP.GREEN,
                             flagger=index.check_indicator, parallel=parallel, batch_size=4)
        flagged.append(sorted((oid, name) for oid, _, name in report.warninglisted))
        assert {oid for oid, _ in store.tagged("warninglist")} == {
            o["id"] for o in objects if not o["pattern"].endswith("'185.220.101.4']")}
        store.close()
    assert flagged[0] == flagged[1] and len(flagged[0]) == 12  # four addresses, three times
