"""Importing STIX: the bundled real reports, bad input of every kind, streaming, export."""

from __future__ import annotations

import gzip
import io
import tracemalloc
from pathlib import Path

import orjson
import pytest

import shieldwall.ingest.stix_bundle as stix_bundle
from shieldwall.ingest.base import ImportError_
from shieldwall.ingest.export import export_bundle
from shieldwall.ingest.runner import detect_format, import_file
from shieldwall.node import member_identity
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query, Store
from tests.factories import indicator, sid

DATA = Path(__file__).resolve().parents[2] / "shieldwall" / "data" / "stix"
PRODUCER = member_identity("estonia")


def run(store: Store, path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return import_file(store, path, source="estonia", producer=PRODUCER,
                       default_tlp=TLP.AMBER, **kw)  # type: ignore[arg-type]


def write_bundle(path: Path, objects: list[object]) -> Path:
    path.write_bytes(orjson.dumps({"type": "bundle", "id": sid("bundle", "0"),
                                   "objects": objects}))
    return path


def test_real_reports_import_completely(store: Store) -> None:
    r = run(store, DATA / "apt1.json")
    assert (r.read, r.new, len(r.rejected)) == (76, 76, 0)
    r = run(store, DATA / "poisonivy.json")
    assert (r.read, r.new, len(r.rejected)) == (155, 155, 0)
    assert store.count(Query(types=["intrusion-set"])) == 1
    hits = store.search("Poison Ivy")
    assert any(h.type == "malware" for h in hits)
    again = run(store, DATA / "apt1.json")
    assert (again.new, again.duplicates) == (0, 76)


def test_invalid_objects_reported_with_id_and_reason_valid_ones_stored(
    sqlite_store: Store, tmp_path: Path
) -> None:
    good = indicator()
    no_pattern = indicator()
    del no_pattern["pattern"]
    bad_pattern = indicator(pattern="[ipv4-addr:value = '1.2.3.4'")
    ms_less = indicator(created="2024-01-01T00:00:00Z")
    custom = {"type": "x-acme-thing", "spec_version": "2.1", "id": sid("x-acme-thing", "a"),
              "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
              "x_acme_score": 7}
    with_custom_prop = indicator(x_acme_extra={"keep": True})
    path = write_bundle(tmp_path / "b.json",
                        [good, no_pattern, bad_pattern, ms_less, custom, with_custom_prop, 42])
    r = run(sqlite_store, path)
    assert r.new == 3
    reasons = {x.where: x.reason for x in r.rejected}
    assert "required property" in reasons[no_pattern["id"]]
    assert reasons[bad_pattern["id"]].startswith("pattern:")
    assert "does not match" in reasons[ms_less["id"]]
    assert len(r.rejected) == 4
    kept = sqlite_store.get(with_custom_prop["id"])
    assert kept is not None and kept.obj()["x_acme_extra"] == {"keep": True}


@pytest.mark.parametrize("content, message", [
    (b"{\"type\": \"bundle\", \"objects\": [", "malformed JSON"),
    (b"\x00\x01\x02binary\xff\xfe", "binary data"),
    (b"", "empty file"),
    (b"{\"hello\": \"world\"}", "not STIX"),
])
def test_unusable_files_raise_one_clear_error(
    sqlite_store: Store, tmp_path: Path, content: bytes, message: str
) -> None:
    sqlite_store.put(indicator(), Provenance("x"))
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(ImportError_, match=message):
        run(sqlite_store, path)
    assert sqlite_store.stats()["objects"] == 1  # nothing already stored is lost


def test_gzip_and_streaming_path_in_bounded_memory(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = [indicator(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(60_000)]
    raw = orjson.dumps({"type": "bundle", "id": sid("bundle", "1"),
                        "objects": objs})
    path = tmp_path / "big.json.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(raw)
    del objs
    monkeypatch.setattr(stix_bundle, "_WHOLE_FILE_LIMIT", 0)  # force the streaming reader
    assert detect_format(path).name == "stix"
    tracemalloc.start()
    r = run(sqlite_store, path, batch_size=2_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert r.new == 60_000
    assert peak < len(raw) / 2  # never held the whole document


def test_tlp_option_applies_to_unmarked_objects_only(sqlite_store: Store, tmp_path: Path) -> None:
    unmarked = indicator(tlp=None)
    red = indicator(tlp=TLP.RED)
    run(sqlite_store, write_bundle(tmp_path / "b.json", [unmarked, red]), tlp=TLP.GREEN)
    assert sqlite_store.get(unmarked["id"]).tlp == TLP.GREEN  # type: ignore[union-attr]
    assert sqlite_store.get(red["id"]).tlp == TLP.RED  # type: ignore[union-attr]


def test_custom_tlp_marking_definition_in_bundle_is_honoured(
    sqlite_store: Store, tmp_path: Path
) -> None:
    marking = {"type": "marking-definition", "spec_version": "2.1",
               "id": sid("marking-definition", "3"),
               "created": "2024-01-01T00:00:00.000Z", "name": "TLP:RED",
               "definition_type": "tlp", "definition": {"tlp": "red"}}
    obj = indicator(tlp=None, object_marking_refs=[marking["id"]])
    r = run(sqlite_store, write_bundle(tmp_path / "b.json", [obj, marking]))
    # TLP 1.0 definitions must use the official ids, so the definition itself is refused...
    assert [x.where for x in r.rejected] == [marking["id"]]
    # ...but the object it marks is still held at the level its producer declared.
    assert sqlite_store.get(obj["id"]).tlp == TLP.RED  # type: ignore[union-attr]


def test_a_stored_custom_marking_cannot_be_lowered_by_redefining_it(
    sqlite_store: Store, tmp_path: Path
) -> None:
    def definition(name: str) -> dict[str, object]:
        return {"type": "marking-definition", "spec_version": "2.1",
                "id": sid("marking-definition", "4"), "created": "2024-01-01T00:00:00.000Z",
                "name": name, "definition_type": "statement", "definition": {"statement": name}}

    run(sqlite_store, write_bundle(tmp_path / "a.json", [definition("TLP:AMBER")]))
    obj = indicator(tlp=None, object_marking_refs=[sid("marking-definition", "4")])
    run(sqlite_store, write_bundle(tmp_path / "b.json", [definition("TLP:CLEAR"), obj]))
    # The file's own definition of that id says CLEAR; the stored one, AMBER: the stricter.
    assert sqlite_store.get(obj["id"]).tlp == TLP.AMBER  # type: ignore[union-attr]


def test_export_filters_type_time_and_tlp_ceiling(sqlite_store: Store, tmp_path: Path) -> None:
    run(sqlite_store, DATA / "poisonivy.json", tlp=TLP.GREEN)
    red = indicator("192.0.2.66", tlp=TLP.RED)
    old = indicator("192.0.2.67", created="2010-01-01T00:00:00.000Z",
                    modified="2010-01-01T00:00:00.000Z")
    run(sqlite_store, write_bundle(tmp_path / "b.json", [red, old]))
    buf = io.StringIO()
    n = export_bundle(sqlite_store, buf, types=["indicator"])
    bundle = orjson.loads(buf.getvalue())
    ids = {o["id"] for o in bundle["objects"]}
    assert n == len(bundle["objects"]) and red["id"] not in ids and old["id"] in ids
    # and, for those imported unmarked at --tlp green, the definition of the level they state
    assert [o["id"] for o in bundle["objects"] if o["type"] != "indicator"] == [
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]
    buf = io.StringIO()
    from shieldwall.stix.timestamps import parse_ts

    export_bundle(sqlite_store, buf, types=["indicator"],
                  modified_from_us=parse_ts("2011-01-01T00:00:00.000Z"))
    assert old["id"] not in {o["id"] for o in orjson.loads(buf.getvalue())["objects"]}
    buf = io.StringIO()
    export_bundle(sqlite_store, buf, tlp_max=TLP.RED, types=["indicator"])
    assert red["id"] in {o["id"] for o in orjson.loads(buf.getvalue())["objects"]}
    # the exported bundle imports cleanly into a fresh node
    fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    out = tmp_path / "export.json"
    out.write_text(buf.getvalue())
    r = run(fresh, out)
    assert r.rejected == [] and r.new == len(orjson.loads(buf.getvalue())["objects"])
    fresh.close()


def test_warning_list_hits_split_benign_from_infrastructure(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """8.8.8.8 is benign; a C2 name under a dynamic-DNS provider is not, it only informs."""
    resolver = indicator("8.8.8.8")
    c2 = indicator(pattern="[domain-name:value = 'mongoles.3322.org']")

    def flagger(obj: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
        if obj["id"] == resolver["id"]:
            return [("List of known IPv4 public DNS resolvers", "8.8.8.8 is on the list")]
        under = "mongoles.3322.org is under 3322.org"
        return [("List of known dynamic DNS domains", under),
                ("Top 1,000,000 most-used sites from Tranco", under)]

    r = run(sqlite_store, write_bundle(tmp_path / "b.json", [resolver, c2]), flagger=flagger)
    assert [x[0] for x in r.warninglisted] == [resolver["id"]]
    assert [i for i, _ in sqlite_store.tagged("warninglist")] == [resolver["id"]]
    info = dict(sqlite_store.tagged("warninglist-info"))
    assert "dynamic DNS" in info[c2["id"]] and "Tranco" in info[c2["id"]]
