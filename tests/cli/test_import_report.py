"""The import report counts indicators, not (indicator, list) pairs."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_import_many import _row
from tests.cli.test_intel_cli import sw


def test_warning_listed_counts_each_indicator_once(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert sw(home, "init", "--member", "estonia").returncode == 0
    iocs = tmp_path / "iocs.txt"
    # google.com is on 11 lists, 1.1.1.1 and 198.51.100.7 (RFC 5735) on one each: 13 pairs
    iocs.write_text("google.com\n1.1.1.1\n198.51.100.7\n")
    r = sw(home, "import", str(iocs))
    assert r.returncode == 0, r.stdout + r.stderr
    assert _row(r.stdout, "iocs.txt")[-1] == "3"
    assert "Indicators on warning lists (3)" in r.stdout
    # each list an indicator is on is still named
    assert "List of known google domains" in r.stdout


def test_file_names_and_reasons_are_not_markup(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert sw(home, "init", "--member", "estonia").returncode == 0
    iocs = tmp_path / "list[bold]:100:.txt"
    iocs.write_text("evilword\n")  # one word and no IOC: rejected with its line
    r = sw(home, "import", "--no-warninglists", str(iocs))
    assert "list[bold]:100:.txt" in r.stdout and "\N{HUNDRED POINTS SYMBOL}" not in r.stdout
