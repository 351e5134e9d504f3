"""`shieldwall member ...`: register members, rotate and revoke their TAXII tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shieldwall.cli.common import HomeOpt, open_node, out

if TYPE_CHECKING:  # policy is imported lazily so that `--help` stays instant
    from shieldwall.policy import Members

member_app = typer.Typer(help="Members of the alliance and their API tokens.",
                         no_args_is_help=True)


def _members(home: HomeOpt) -> Members:
    from shieldwall.policy import Members

    return Members(open_node(home).store.engine)


@member_app.command("add")
def add(
    name: str,
    tier: Annotated[str, typer.Option(help="ally, partner or organisation.")] = "ally",
    home: HomeOpt = None,
) -> None:
    """Register a member; prints its API token as the only line on stdout (shown once)."""
    print(_members(home).add(name, tier))


@member_app.command("rotate")
def rotate(name: str, home: HomeOpt = None) -> None:
    """Issue a new token (the old one stops working at once); prints it."""
    print(_members(home).rotate(name))


@member_app.command("revoke")
def revoke(name: str, home: HomeOpt = None) -> None:
    """Stop a member's token working; 'rotate' issues a new one."""
    _members(home).revoke(name)


@member_app.command("join")
def join(name: str, group: str, home: HomeOpt = None) -> None:
    """Put a member in a sharing group (producers name it as 'group:GROUP')."""
    _members(home).join(name, group)


@member_app.command("leave")
def leave(name: str, group: str, home: HomeOpt = None) -> None:
    """Take a member out of a sharing group."""
    _members(home).leave(name, group)


@member_app.command("list")
def list_(home: HomeOpt = None) -> None:
    """Members, their tier, groups and whether their token is revoked."""
    from rich.table import Table

    from shieldwall.stix.timestamps import format_ts

    table = Table("name", "tier", "groups", "token issued", "state")
    for m in _members(home).list():
        table.add_row(str(m["name"]), str(m["tier"]), ", ".join(m["groups"]),  # type: ignore[arg-type]
                      format_ts(int(m["rotated_us"])),  # type: ignore[call-overload]
                      "revoked" if m["revoked"] else "active")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(member_app, name="member")
