"""`shieldwall user ...`: dashboard users (per member, with a role)."""

from __future__ import annotations

from typing import Annotated

import typer

from shieldwall.cli.common import HomeOpt, open_node, out

user_app = typer.Typer(help="Dashboard users: who may sign in to the web dashboard.",
                       no_args_is_help=True)


@user_app.command("add")
def add(
    name: str,
    member: Annotated[str, typer.Option(help="The member whose view this user gets.")],
    role: Annotated[str, typer.Option(help="analyst, coordinator or read-only.")] = "analyst",
    home: HomeOpt = None,
) -> None:
    """Create a user; prints its generated password as the only line on stdout (shown once)."""
    from shieldwall.web.users import create_user

    print(create_user(open_node(home), name, member, role))


@user_app.command("remove")
def remove(name: str, home: HomeOpt = None) -> None:
    """Delete a user and end its sessions."""
    from shieldwall.web.users import Users

    Users(open_node(home).store.engine).remove(name)


@user_app.command("list")
def list_(home: HomeOpt = None) -> None:
    """Users, their member and role."""
    from rich.table import Table

    from shieldwall.web.users import Users

    table = Table("user", "member", "role")
    for u in Users(open_node(home).store.engine).list():
        table.add_row(u.name, u.member, u.role)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
