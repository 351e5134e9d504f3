"""What an export says about its marking: every object states the level this node holds it
at, so the next node never reads it at a wider audience (issue 14, section 4)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from shieldwall.stix.markings import TLP, TLP1_IDS, TLP2_EXTENSION_ID, tlp_marking_ref
from shieldwall.stix.outbound import held_text
from shieldwall.store import Provenance, Store
from tests.cli.test_intel_cli import sw
from tests.factories import indicator, sid

AMBER = tlp_marking_ref(TLP.AMBER)


def _bundle(home: Path, tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "export.json"
    r = sw(home, "export", "--output", str(out), *args)
    assert r.returncode == 0, r.stderr
    return orjson.loads(out.read_bytes())["objects"]


@pytest.fixture
def amber_node(tmp_path: Path) -> Path:
    """A node at the default TLP (AMBER) holding an IOC list imported without --tlp."""
    home = tmp_path / "amber"
    assert sw(home, "init", "--member", "estonia").returncode == 0
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("198.51.100.7\nevil-c2.example.net\n")
    r = sw(home, "import", "--no-warninglists", str(iocs))
    assert r.returncode == 0, r.stdout + r.stderr
    return home


def test_unmarked_objects_leave_with_the_level_the_node_holds_them_at(
    amber_node: Path, tmp_path: Path
) -> None:
    objs = [o for o in _bundle(amber_node, tmp_path, "--type", "indicator")
            if o["type"] == "indicator"]
    assert len(objs) == 2
    assert all(o["object_marking_refs"] == [AMBER] for o in objs)


def test_export_holds_the_tlp_definitions_it_refers_to(amber_node: Path, tmp_path: Path) -> None:
    objs = _bundle(amber_node, tmp_path, "--type", "indicator,marking-definition")
    defs = [o for o in objs if o["type"] == "marking-definition"]
    assert [d["id"] for d in defs] == [AMBER]  # once, even where the store holds it too
    assert defs[0]["extensions"][TLP2_EXTENSION_ID]["tlp_2_0"] == "amber"
    only = _bundle(amber_node, tmp_path, "--type", "indicator")
    assert [o["id"] for o in only if o["type"] == "marking-definition"] == [AMBER]


def test_a_node_with_a_lower_default_reads_the_export_at_amber(
    amber_node: Path, tmp_path: Path
) -> None:
    _bundle(amber_node, tmp_path)
    clear = tmp_path / "clear"
    assert sw(clear, "init", "--member", "latvia", "--default-tlp", "clear").returncode == 0
    r = sw(clear, "import", "--no-warninglists", str(tmp_path / "export.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    green = _bundle(clear, tmp_path, "--tlp-max", "green", "--type", "indicator")
    assert green == []  # before: both indicators, read at CLEAR
    held = _bundle(clear, tmp_path, "--type", "indicator")
    assert [o["type"] for o in held] == ["indicator", "indicator", "marking-definition"]


def test_stated_levels_leave_as_stored(tmp_path: Path) -> None:
    marked = indicator(tlp=None, object_marking_refs=[TLP1_IDS[TLP.AMBER]])
    text = orjson.dumps(marked, option=orjson.OPT_SORT_KEYS).decode()
    assert held_text(text, TLP.AMBER) is None
    assert held_text(text, TLP.GREEN) is None
    # a stricter level held here (a custom RED definition beside it) is added
    stricter = held_text(text, TLP.RED)
    assert stricter is not None
    assert orjson.loads(stricter)["object_marking_refs"] == [tlp_marking_ref(TLP.RED),
                                                            TLP1_IDS[TLP.AMBER]]
    # nothing is wider than CLEAR: an unmarked CLEAR object needs no ref
    plain = orjson.dumps(indicator(tlp=None), option=orjson.OPT_SORT_KEYS).decode()
    assert held_text(plain, TLP.CLEAR) is None


def test_an_id_quoted_in_a_description_is_not_a_marking() -> None:
    quoted = f'"object_marking_refs":["{AMBER}"] and "marking_ref":"{AMBER}"'
    obj = indicator(tlp=None, description=quoted)
    out = held_text(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode(), TLP.AMBER)
    assert out is not None and orjson.loads(out)["object_marking_refs"] == [AMBER]


def test_what_a_sighting_refers_to_follows_it_under_the_same_ceiling(sqlite_store: Store) -> None:
    from shieldwall.ingest.export import export_bundle

    def observed(n: int, tlp: TLP) -> tuple[dict, dict]:
        addr = {"type": "ipv4-addr", "spec_version": "2.1", "id": sid("ipv4-addr", str(n)),
                "value": f"198.51.100.{n}"}
        od = {"type": "observed-data", "spec_version": "2.1", "id": sid("observed-data", str(n)),
              "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
              "first_observed": "2024-01-01T00:00:00Z", "last_observed": "2024-01-01T00:00:00Z",
              "number_observed": 1, "object_refs": [addr["id"]],
              "object_marking_refs": [tlp_marking_ref(tlp)]}
        return od, addr

    amber_od, amber_addr = observed(1, TLP.AMBER)
    red_od, red_addr = observed(2, TLP.RED)
    ind = indicator()
    seen = {"type": "sighting", "spec_version": "2.1", "id": sid("sighting", "3"),
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "sighting_of_ref": ind["id"], "observed_data_refs": [amber_od["id"], red_od["id"]],
            "object_marking_refs": [tlp_marking_ref(TLP.AMBER)]}
    sqlite_store.put_many([ind, amber_od, amber_addr, red_od, seen], Provenance("x"))
    sqlite_store.put_many([red_addr], Provenance("x"), default_tlp=TLP.RED)
    buf = io.StringIO()
    export_bundle(sqlite_store, buf, types=["sighting"])
    ids = [o["id"] for o in orjson.loads(buf.getvalue())["objects"]]
    assert seen["id"] in ids and amber_od["id"] in ids and amber_addr["id"] in ids
    assert red_od["id"] not in ids and red_addr["id"] not in ids  # above --tlp-max
    assert ind["id"] not in ids  # the type filter still holds for what is not needed
    assert len(ids) == len(set(ids))
