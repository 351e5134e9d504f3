"""What an export says about its marking: every object states the level this node holds it
at, so the next node never reads it at a wider audience (issue 14, section 4)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shieldwall.stix.markings import TLP, TLP1_IDS, TLP2_EXTENSION_ID, tlp_marking_ref
from shieldwall.stix.outbound import held_text
from tests.cli.test_intel_cli import sw
from tests.factories import indicator

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
    assert [o["type"] for o in held] == ["indicator", "indicator"]


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
