"""`shieldwall hunt` prints what it was given as text: a bad line's file and number, and
what the line said, are not read as rich markup or emoji codes (`conn.log:100:` is not 💯)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_intel_cli import sw

ZEEK_JSON = Path(__file__).resolve().parents[1] / "data" / "zeek" / "json" / "conn.log"


def test_bad_line_report_is_printed_as_is(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert sw(home, "init", "--member", "estonia").returncode == 0
    lines = ZEEK_JSON.read_text().splitlines() * 2
    lines[99] = '{"ts": 1, "id.orig_h": "[bold]10.0.0.1[/bold]", :smile: broken'
    log = tmp_path / "conn.log"
    log.write_text("\n".join(lines) + "\n")
    r = sw(home, "hunt", "--no-keep", str(log))
    assert r.returncode == 0, r.stdout + r.stderr
    report = r.stdout + r.stderr
    assert f"{log}:100: bad JSON" in report.replace("\n", "")
    assert "\N{HUNDRED POINTS SYMBOL}" not in report
