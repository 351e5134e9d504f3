"""The import's pre-pass over custom TLP marking definitions (`runner.defined_markings`):
every definition of every file is found, wherever it stands, and a file that names none is
not parsed."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from shieldwall.ingest import runner
from shieldwall.ingest.runner import defined_markings
from shieldwall.stix.identity import member_identity
from shieldwall.stix.markings import TLP, tlp_marking_ref
from tests.factories import indicator

PRODUCER = member_identity("estonia")


def _statement(level: str) -> dict[str, Any]:
    return {"type": "marking-definition", "spec_version": "2.1",
            "id": f"marking-definition--{uuid.uuid4()}", "created": "2024-01-01T00:00:00.000Z",
            "name": f"TLP:{level.upper()}", "definition_type": "statement",
            "definition": {"statement": "Copyright {ACME} \"quoted\" é"}}


def _tlp2(level: str) -> dict[str, Any]:
    return {"type": "marking-definition", "spec_version": "2.1",
            "id": f"marking-definition--{uuid.uuid4()}", "created": "2022-10-01T00:00:00.000Z",
            "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension", "tlp_2_0": level}}}


def _filler(n: int) -> list[dict[str, Any]]:
    return [indicator(f"10.9.{i >> 8}.{i & 255}", description="{ not json") for i in range(n)]


def _write(path: Path, data: Any, dumps: str = "orjson") -> Path:
    raw = orjson.dumps(data) if dumps == "orjson" else json.dumps(data, indent=2).encode()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


@pytest.mark.parametrize("name", ["late.json", "late.json.gz"])
@pytest.mark.parametrize("dumps", ["orjson", "json indented"])
def test_definitions_anywhere_in_a_bundle_are_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, dumps: str) -> None:
    first, middle, last = _statement("green"), _tlp2("amber+strict"), _statement("red")
    objs = [first, *_filler(300), middle, *_filler(300), last]
    path = _write(tmp_path / name, {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                    "objects": objs}, dumps)
    alone: list[Any] = []
    real = runner._definitions_at
    monkeypatch.setattr(runner, "_definitions_at", lambda p, at: alone.append(real(p, at))
                        or alone[-1])
    assert defined_markings([path], producer=PRODUCER) == {
        first["id"]: TLP.GREEN, middle["id"]: TLP.AMBER_STRICT, last["id"]: TLP.RED}
    # A plain file's definitions are parsed alone where they stand; a gzipped one is read.
    assert [len(d) if d else d for d in alone] == ([] if name.endswith(".gz") else [3])


def test_a_lookalike_value_falls_back_to_reading_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """"marking-definition" as another property's value is no definition: the positions
    then do not all hold one, and the file is read instead (to its end)."""
    red = _statement("red")
    decoy = indicator("10.9.9.9", x_kind="marking-definition")
    path = _write(tmp_path / "decoy.json", [decoy, *_filler(50), red])
    reads: list[Path] = []
    real = runner._definitions_at

    def spy(p: Path, at: list[int]) -> Any:
        got = real(p, at)
        reads.append(p)
        assert got is None
        return got

    monkeypatch.setattr(runner, "_definitions_at", spy)
    assert defined_markings([path], producer=PRODUCER) == {red["id"]: TLP.RED}
    assert reads == [path]


def test_files_naming_no_definition_are_not_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _write(tmp_path / "plain.json", {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                            "objects": [indicator(tlp=TLP.RED)]})
    assert tlp_marking_ref(TLP.RED) in plain.read_text()  # refs are not definitions
    (tmp_path / "iocs.txt").write_text("198.51.100.7\nevil-c2.net\n")

    def no_reading(*_: Any) -> Any:
        raise AssertionError("parsed a file that names no marking definition")

    monkeypatch.setattr(runner, "detect_format", no_reading)
    assert defined_markings([plain, tmp_path / "iocs.txt"], producer=PRODUCER) == {}


def test_a_directory_gives_one_map_and_the_stricter_level(tmp_path: Path) -> None:
    red = _statement("red")
    green = {**red, "name": "TLP:GREEN"}
    a = _write(tmp_path / "a.json", [*_filler(10), green])
    b = _write(tmp_path / "b.json", [red])
    assert defined_markings([a, b], producer=PRODUCER) == {red["id"]: TLP.RED}


def test_a_definition_nested_too_deep_does_not_break_the_scan(tmp_path: Path) -> None:
    """A definition carrying JSON nested far deeper than a parser's recursion: its
    position is given up on, and the file's own reader refuses the depth (nothing found,
    no crash; the import then reports the file)."""
    deep = "[" * 50_000 + "]" * 50_000
    path = tmp_path / "deep.json"
    path.write_text('[{"type": "marking-definition", "name": "TLP:RED", "id": '
                    f'"marking-definition--{uuid.uuid4()}", "x_v": {deep}}}]')
    assert defined_markings([path], producer=PRODUCER) == {}
