"""Entry point. Each module in this package with a `register(app)` adds its commands.

Modules register themselves so that each capability (intel, members, hunt, hygiene,
...) lives in its own file and can be read without the others. Heavy imports stay
inside the command functions: `shieldwall --help` must answer instantly.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import pkgutil
import sys

import typer

from shieldwall.errors import ShieldwallError

app = typer.Typer(
    name="shieldwall",
    help="A node of an alliance's collective cyber defence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SKIP = {"main", "common"}


def _register_all() -> None:
    import shieldwall.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"shieldwall.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def _only(name: str) -> typer.Typer | None:
    """The app with only the command or group `name` (None when `name` names none): click's
    whole tree of 29 commands and groups costs ~0.1-0.25 s to build, every command, though
    one is run. A callback keeps it a group, so `shieldwall NAME ...` parses as before."""
    from typer.main import get_command_name

    commands = [c for c in app.registered_commands
                if (c.name or get_command_name(c.callback.__name__)) == name]  # type: ignore[union-attr]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        return None
    one = typer.Typer(name=app.info.name, help=app.info.help, no_args_is_help=True,
                      add_completion=False, pretty_exceptions_enable=False)
    one.registered_commands = commands
    one.registered_groups = groups
    one.callback()(_group)
    return one


def _group() -> None:
    """A node of an alliance's collective cyber defence."""


def main() -> None:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    # At exit the interpreter's last collections walk every object still alive (SQLAlchemy's,
    # pydantic's, rich's: ~70,000), ~0.07 s of every command; frozen, they are skipped.
    # Registered first, it runs after every other exit handler; the OS frees the memory.
    atexit.register(gc.freeze)
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        run = (_only(sys.argv[1]) if len(sys.argv) > 1 else None) or app
        code = run(standalone_mode=False)
    except ShieldwallError as exc:
        print(f"shieldwall: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("shieldwall: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors and anything unforeseen
        import click

        # Typer carries its own click, whose usage errors are not `click.ClickException`s:
        # shown as click shows them (usage, one line, exit 2), not as an internal error.
        if isinstance(exc, click.ClickException | typer.TyperException) and \
                hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        if os.environ.get("SHIELDWALL_DEBUG"):
            raise
        print(f"shieldwall: internal error: {type(exc).__name__}: {exc} "
              "(set SHIELDWALL_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(70)
    else:
        sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
