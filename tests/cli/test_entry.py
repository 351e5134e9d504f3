"""The `shieldwall` entry point, as a user meets it: a real process of the console script.

Only the named command's part of the command tree is built (`cli.main._only`); these check
that the user sees no difference: the same help, the same commands, usage errors shown as
click shows them (exit 2), never as an internal error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "shieldwall")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_top_level_help_lists_every_command() -> None:
    from shieldwall.cli.main import app

    out = _run("--help")
    assert out.returncode == 0
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    names += [g.name for g in app.registered_groups]  # type: ignore[misc]
    assert len(names) > 20
    for name in names:
        assert name.replace("_", "-") in out.stdout, name


@pytest.mark.parametrize("args, shown", [
    (("nonsense",), "No such command 'nonsense'"),
    (("import",), "Missing argument"),
    (("stats", "--bogus"), "No such option: --bogus"),
    (("case", "nonsense"), "No such command 'nonsense'"),
])
def test_usage_errors_are_usage_errors(args: tuple[str, ...], shown: str) -> None:
    out = _run(*args)
    assert out.returncode == 2, out.stderr
    assert shown in out.stderr
    assert "Usage: shieldwall" in out.stderr
    assert "internal error" not in out.stderr


def test_a_group_and_a_command_answer_as_before() -> None:
    case = _run("case", "--help")
    assert case.returncode == 0 and "Usage: shieldwall case" in case.stdout
    assert "verify" in case.stdout and "publish" in case.stdout
    imp = _run("import", "--help")
    assert imp.returncode == 0 and "--no-warninglists" in imp.stdout
    assert _run("stats", "--help").returncode == 0


def test_a_command_runs_and_fails_as_before(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert _run("init", "--member", "cert-test", "--home", str(home)).returncode == 0
    stats = _run("stats", "--home", str(home))
    assert stats.returncode == 0 and "objects" in stats.stdout
    missing = _run("stats", "--home", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("shieldwall: error: no node at")
