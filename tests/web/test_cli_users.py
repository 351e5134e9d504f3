"""`shieldwall user add|list|remove`: the password is the only line on stdout."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shieldwall.cli.users import user_app
from shieldwall.config import init_home, load_config
from shieldwall.policy import Members
from shieldwall.store import Store
from shieldwall.web.users import Users


def test_user_add_prints_only_the_password(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "estonia")
    store = Store.open(load_config(home).db_url)
    Members(store.engine).add("estonia", "ally")
    runner = CliRunner()
    result = runner.invoke(user_app, ["add", "ana", "--member", "estonia", "--role",
                                      "coordinator", "--home", str(home)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 20
    user = Users(store.engine).verify("ana", lines[0])
    assert user is not None and user.role == "coordinator" and user.member == "estonia"
    assert runner.invoke(user_app, ["remove", "ana", "--home", str(home)]).exit_code == 0
    assert Users(store.engine).verify("ana", lines[0]) is None
    store.close()
