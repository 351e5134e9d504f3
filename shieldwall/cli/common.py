"""What every command shares: the --home option, opening the node, the console."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shieldwall.node import Node

console = Console(stderr=True)
out = Console()

HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Node home (default $SHIELDWALL_HOME, else ./.shieldwall)."),
]


def open_node(home: Path | None) -> Node:
    # Imported here, not at the top: every command module imports this one when the CLI
    # starts, and these imports (SQLAlchemy, pydantic) are most of its start-up time.
    from shieldwall.config import resolve_home
    from shieldwall.node import Node

    return Node.load(resolve_home(home))


def counted(n: int, word: str, plural: str | None = None) -> str:
    """"1 hit", "2 hits", "1,000 events": a person reads counts, not "1 hits"."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"
