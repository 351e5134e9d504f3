"""`shieldwall import A B C`: every file is imported or reported, in one table; a file that
cannot be read does not stop the others, and the exit code says that one failed."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.cli.test_intel_cli import DATA, sw
from tests.factories import indicator, sid


def _row(stdout: str, name: str) -> list[str]:
    line = next(x for x in stdout.splitlines() if f" {name} " in x)
    return [c.strip() for c in line.strip("│ \n").split("│")]


def test_every_file_is_reported_and_the_run_fails_at_the_end(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert sw(home, "init", "--member", "estonia").returncode == 0
    binary = tmp_path / "capture.pcap"
    binary.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(range(256)) * 4)
    # A large bundle (streamed, stored a batch at a time) cut short by a failed download
    objs = [indicator(f"10.9.{i // 256}.{i % 256}") for i in range(6_000)]
    whole = orjson.dumps({"type": "bundle", "id": sid("bundle"), "objects": objs})
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[: len(whole) * 9 // 10])
    r = sw(home, "import", "--no-warninglists", str(DATA / "apt1.json"), str(binary),
           str(cut), str(DATA / "poisonivy.json"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert _row(r.stdout, "apt1.json")[:4] == ["apt1.json", "stix", "76", "76"]
    assert _row(r.stdout, "poisonivy.json")[:4] == ["poisonivy.json", "stix", "155", "155"]
    assert _row(r.stdout, "capture.pcap")[1] == "failed"
    # what the cut file stored before its end is counted, not lost from the report
    partial = _row(r.stdout, "cut.json")
    assert partial[1] == "stix, failed" and int(partial[3]) >= 5_000
    assert "capture.pcap: binary data" in r.stderr and "cut.json: malformed JSON" in r.stderr
