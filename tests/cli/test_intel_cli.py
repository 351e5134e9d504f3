"""The intel commands as an analyst runs them: real processes, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.factories import indicator, sid

DATA = Path(__file__).resolve().parents[2] / "shieldwall" / "data" / "stix"


def sw(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SHIELDWALL_HOME=str(home), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "shieldwall.cli.main", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_init_import_search_stats_export(tmp_path: Path) -> None:
    home = tmp_path / "node"
    r = sw(home, "init", "--member", "estonia")
    assert r.returncode == 0, r.stderr
    assert (home / "shieldwall.toml").is_file()
    r = sw(home, "import", str(DATA / "apt1.json"), str(DATA / "poisonivy.json"))
    assert r.returncode == 0, r.stderr
    assert "apt1.json" in r.stdout and "76" in r.stdout and "155" in r.stdout
    r = sw(home, "search", "Poison Ivy")
    assert r.returncode == 0 and "malware--591f0cb7" in r.stdout
    r = sw(home, "search", "no-such-thing-anywhere")
    assert r.returncode == 1
    r = sw(home, "stats")
    assert r.returncode == 0 and "232" in r.stdout  # 231 imported + the member identity
    out = tmp_path / "export.json"
    r = sw(home, "export", "--type", "indicator", "--output", str(out))
    assert r.returncode == 0, r.stderr
    bundle = orjson.loads(out.read_bytes())
    assert bundle["type"] == "bundle" and len(bundle["objects"]) == 38
    # 37 unmarked indicators held at AMBER, stated as such, and the definition they now name
    assert [o["id"] for o in bundle["objects"] if o["type"] != "indicator"] == [
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]
    r = sw(home, "export", "--type", "malware")
    assert r.returncode == 0 and orjson.loads(r.stdout)["objects"][0]["type"] == "malware"


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    home = tmp_path / "node"
    r = sw(home, "stats")
    assert r.returncode == 2 and "shieldwall init" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    sw(home, "init", "--member", "estonia")
    r = sw(home, "init", "--member", "estonia")
    assert r.returncode == 2 and "already exists" in r.stderr
    cases = [(b"\x00\xff\x13garbage", "binary data"), (b"{\"type\": ", "malformed JSON")]
    for content, expect in cases:
        f = tmp_path / "bad.json"
        f.write_bytes(content)
        r = sw(home, "import", str(f))
        assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr
    r = sw(home, "import", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = sw(home, "import", "--tlp", "purple", str(DATA / "apt1.json"))
    assert r.returncode == 2 and "unknown TLP" in r.stderr
    r = sw(home, "export", "--since", "last tuesday")
    assert r.returncode == 2 and "not a STIX timestamp" in r.stderr


def test_import_that_rejects_everything_exits_non_zero(tmp_path: Path) -> None:
    home = tmp_path / "node"
    sw(home, "init", "--member", "estonia")
    bad = indicator()
    del bad["pattern"]
    f = tmp_path / "b.json"
    f.write_bytes(orjson.dumps({"type": "bundle", "id": sid("bundle", "2"),
                                "objects": [bad]}))
    r = sw(home, "import", str(f))
    assert r.returncode == 1
    assert bad["id"] in r.stdout and "required property" in r.stdout
