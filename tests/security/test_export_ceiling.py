"""`shieldwall export` and `search` as an operator runs them: the TLP ceiling, granular RED,
AMBER+STRICT, and a file made for one member (`--for`). In-process (Typer's runner) but for
the error path, which a real process shows as one line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from shieldwall.cli.main import app
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from tests.cli.test_intel_cli import sw


def _ind(name: str, level: TLP, audience: list[str] | None = None, **extra: Any
         ) -> dict[str, Any]:
    obj = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
           "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
           "name": name, "pattern": f"[domain-name:value = '{name}.example']",
           "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
           "object_marking_refs": [tlp_marking_ref(level)], **extra}
    if audience:
        obj[AUDIENCE_PROPERTY] = audience
    return obj


def _names(stdout: str) -> set[str]:
    """The exported objects' names, less the TLP 2.0 definitions the bundle names."""
    return {o.get("name") for o in orjson.loads(stdout)["objects"]
            if o["type"] != "marking-definition"} - {None}


def run(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"SHIELDWALL_HOME": str(home),
                                                    "COLUMNS": "200"})


def test_export_and_search_keep_to_their_ceiling_and_audience(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert run(home, "init", "--member", "estonia").exit_code == 0
    for name, tier in (("latvia", "ally"), ("lithuania", "ally"), ("partnerland", "partner")):
        r = run(home, "member", "add", name, "--tier", tier)
        assert r.exit_code == 0, r.output
    objs = [
        _ind("green", TLP.GREEN), _ind("amber", TLP.AMBER),
        _ind("strict-latvia", TLP.AMBER_STRICT, ["latvia"]),
        _ind("red-latvia", TLP.RED, ["latvia"]),
        _ind("granular", TLP.GREEN, description="secret source",
             granular_markings=[{"marking_ref": tlp_marking_ref(TLP.RED),
                                 "selectors": ["description"]}]),
    ]
    bundle = tmp_path / "in.json"
    bundle.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                     "objects": objs}))
    r = run(home, "import", "--no-warninglists", str(bundle))
    assert r.exit_code == 0, r.output

    def export(*args: str) -> set[str]:
        r = run(home, "export", "--type", "indicator", *args)
        assert r.exit_code == 0, r.output
        return _names(r.stdout[:r.stdout.rindex("}") + 1])

    # RED, granular RED included, never leaves without --tlp-max red.
    assert export() == {"green", "amber", "strict-latvia"}
    assert export("--tlp-max", "amber") == {"green", "amber"}
    assert export("--tlp-max", "green") == {"green"}
    assert export("--tlp-max", "red") == {n for n in (o["name"] for o in objs)}
    # A file made for one member holds what TAXII would give it, and no more.
    assert export("--for", "lithuania") == {"green", "amber"}
    assert export("--for", "partnerland") == {"green"}
    assert export("--for", "latvia", "--tlp-max", "red") == {
        "green", "amber", "strict-latvia", "red-latvia"}
    r = sw(home, "export", "--for", "narnia")
    assert r.returncode == 2 and "no active member named 'narnia'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    r = run(home, "search", "red-latvia.example", "--for", "lithuania")
    assert r.exit_code == 1 and "nothing found" in r.output and "TLP:RED" not in r.output
    r = run(home, "search", "red-latvia.example", "--for", "latvia")
    assert r.exit_code == 0 and "TLP:RED" in r.output
