"""The intel commands: init, import, export, search, stats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from shieldwall.cli.common import HomeOpt, console, counted, open_node, out
from shieldwall.errors import ShieldwallError
from shieldwall.policy.model import TIERS
from shieldwall.stix.markings import TLP

if TYPE_CHECKING:
    from shieldwall.ingest.runner import Flagger, Prefetch
    from shieldwall.node import Node
    from shieldwall.store import Access

ForMember = Annotated[str | None, typer.Option(
    "--for", help="Only what this registered member may read (its TAXII view).")]


def _tlp(value: str | None) -> TLP | None:
    if value is None:
        return None
    try:
        return TLP.parse(value)
    except ValueError as exc:
        raise ShieldwallError(str(exc)) from None


def _access_for(node: Node, member: str | None) -> Access | None:
    """The store `Access` TAXII applies to `member`; None (the whole node) without one.

    A file made for a member then holds nothing its TLP and audience would not let it
    read over TAXII: no AMBER+STRICT or RED named to someone else, no AMBER for a partner.
    """
    if member is None:
        return None
    from shieldwall.policy import Members, PolicyError
    from shieldwall.policy.access import access_for

    try:
        found = Members(node.store.engine).get(member, required=True)
    except PolicyError as exc:
        node.close()
        raise ShieldwallError(str(exc)) from None
    assert found is not None
    return access_for(found)


def init(
    member: Annotated[str, typer.Option("--member", help="This node's member name.")],
    home: HomeOpt = None,
    tier: Annotated[str, typer.Option(help=f"This member's tier: {', '.join(TIERS)}.")] = "ally",
    default_tlp: Annotated[str, typer.Option(help="TLP for objects that carry none.")] = "amber",
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default SQLite in the home.")
    ] = None,
) -> None:
    """Create a node home: config and database."""
    from shieldwall.config import init_home, resolve_home

    path = resolve_home(home)
    try:
        cfg = init_home(path, member, tier=tier, default_tlp=default_tlp,
                        database_url=database_url)
    except ValueError as exc:
        raise ShieldwallError(str(exc).splitlines()[-1].strip()) from None
    from shieldwall.node import Node

    node = Node(cfg)
    from shieldwall.store import Provenance

    node.store.put(node.identity(), Provenance(member, "local"), default_tlp=TLP.CLEAR)
    node.close()
    console.print(f"[green]node for member [bold]{member}[/] created at {path}[/]")


def import_(
    files: Annotated[list[Path], typer.Argument(help="Files or directories to import.")],
    home: HomeOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force a format.")] = None,
    tlp: Annotated[
        str | None, typer.Option(help="TLP for objects that carry none (IOC lists: all).")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Validate with the full OASIS stix2-validator (slow).")
    ] = False,
    no_warninglists: Annotated[
        bool, typer.Option("--no-warninglists", help="Do not flag known-benign values.")
    ] = False,
) -> None:
    """Import STIX bundles, MISP events, CSV or free-text IOC lists, vulnerability feeds.

    A file that cannot be read as a whole (malformed, too deeply nested) is reported in
    one line and skipped; the others are imported; the exit code is then 2."""
    from shieldwall.ingest.runner import prefetch

    level = _tlp(tlp)
    # One large file (the common case of a feed's bundle): its worker starts now, before the
    # node is opened, and reads while this process imports and opens the store.
    early = prefetch(files[0], fmt=fmt, tlp=level, strict=strict,
                     warninglists=not no_warninglists) if len(files) == 1 else None
    try:
        _import_files(files, home, fmt, level, strict, no_warninglists, early)
    finally:
        if early is not None:
            early.close()


def _import_files(files: list[Path], home: Path | None, fmt: str | None, level: TLP | None,
                  strict: bool, no_warninglists: bool, early: Prefetch | None) -> None:
    from shieldwall.ingest.base import ImportError_
    from shieldwall.ingest.runner import (
        FileReport,
        PartialImport,
        defined_markings,
        expand_paths,
        import_file,
    )

    node = open_node(home)
    flagger = None if no_warninglists else _warninglist_flagger()
    reports = []
    unusable: list[str] = []
    paths = list(expand_paths(files))
    # One import: a marking definition in any of its files marks what the others hold.
    markings = defined_markings(paths, producer=node.identity(), tlp=level, fmt=fmt)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} objects"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:
        for path in paths:
            task = progress.add_task(path.name, total=None)
            try:
                reports.append(import_file(
                    node.store, path, source=node.member, producer=node.identity(),
                    default_tlp=node.config.default_tlp_level, tlp=level, fmt=fmt,
                    flagger=flagger, strict=strict, markings=markings,
                    prefetched=early if path == files[0] else None,
                    progress=lambda n, t=task: progress.advance(t, n),
                ))
            except ImportError_ as exc:
                # Reported in the table (with what a cut stream stored before it failed)
                # and in one line; the other files are still imported.
                failed = exc.report if isinstance(exc, PartialImport) else \
                    FileReport(str(path), "")
                failed.error = str(exc)
                reports.append(failed)
                unusable.append(str(exc))
    node.close()
    if len(paths) == 1 and unusable and not reports[0].read:
        raise ShieldwallError(unusable[0])
    _render_import(reports)
    for why in unusable:
        print(f"shieldwall: error: {why}", file=sys.stderr)
    if unusable:
        raise typer.Exit(2)
    if all(r.stored == 0 and r.duplicates == 0 for r in reports) and any(
        r.rejected for r in reports
    ):
        raise typer.Exit(1)


def _warninglist_flagger() -> Flagger:
    """MISP warning lists; the index (~14 s to build) is built at the first indicator only."""
    from shieldwall.ingest.warninglists import check_indicator

    return check_indicator


def _render_import(reports: list) -> None:  # type: ignore[type-arg]
    table = Table(title="Import")
    for col in ("file", "format", "read", "stored", "new versions", "duplicates", "rejected",
                "warning-listed"):
        table.add_column(col, justify="left" if col in ("file", "format") else "right")
    for r in reports:
        fmt = r.format if r.error is None else ", ".join(x for x in (r.format, "failed") if x)
        table.add_row(Text(Path(r.path).name), fmt, str(r.read), str(r.new),
                      str(r.new_versions + r.history), str(r.duplicates), str(len(r.rejected)),
                      str(len({oid for oid, _, _ in r.warninglisted})))
    out.print(table)
    upgraded = sum(r.format == "stix-2.0" for r in reports)
    if upgraded:
        out.print(f"{counted(upgraded, 'file')} upgraded from STIX 2.0 to 2.1 on import "
                  "(spec_version, typed labels, pattern_type; docs/ingest.md)")
    rejected = [(r.path, x) for r in reports for x in r.rejected]
    if rejected:
        t = Table(title=f"Rejected ({len(rejected)})")
        t.add_column("file")
        t.add_column("where")
        t.add_column("reason")
        for path, x in rejected[:50]:
            t.add_row(Text(Path(path).name), Text(x.where), Text(x.reason))  # not markup
        out.print(t)
        if len(rejected) > 50:
            out.print(f"… and {len(rejected) - 50} more")
    # One row per indicator (one on a dozen top-site lists is still one indicator)
    flagged: dict[str, tuple[str, list[str]]] = {}
    for r in reports:
        for oid, value, name in r.warninglisted:
            lists = flagged.setdefault(oid, (value, []))[1]
            if name not in lists:
                lists.append(name)
    if flagged:
        t = Table(title=f"Indicators on warning lists ({len(flagged)}): not used for alerting")
        t.add_column("indicator")
        t.add_column("match")
        t.add_column("lists")
        for oid, (value, names) in list(flagged.items())[:30]:
            t.add_row(oid, Text(value), Text("; ".join(names)))
        out.print(t)


def export(
    home: HomeOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout).")]
    = None,
    types: Annotated[str | None, typer.Option("--type", help="Comma-separated STIX types.")]
    = None,
    since: Annotated[str | None, typer.Option(help="Modified at or after (STIX timestamp).")]
    = None,
    until: Annotated[str | None, typer.Option(help="Modified at or before (STIX timestamp).")]
    = None,
    tlp_max: Annotated[str, typer.Option("--tlp-max", help="Most restricted TLP to include.")]
    = "amber+strict",
    all_versions: Annotated[bool, typer.Option(help="Every version, not just the latest.")]
    = False,
    for_member: ForMember = None,
) -> None:
    """Export a STIX 2.1 bundle (latest versions; TLP:RED only if --tlp-max red; with --for,
    only what that member may read). Every object states the TLP level this node holds it
    at; a sighting brings the observed-data and observables it names."""
    from shieldwall.ingest.export import export_bundle
    from shieldwall.stix.timestamps import parse_ts

    try:
        lo = parse_ts(since) if since else None
        hi = parse_ts(until) if until else None
    except ValueError as exc:
        raise ShieldwallError(str(exc)) from None
    node = open_node(home)
    kwargs = dict(
        types=[t.strip() for t in types.split(",")] if types else None,
        modified_from_us=lo, modified_to_us=hi, tlp_max=_tlp(tlp_max),
        all_versions=all_versions, access=_access_for(node, for_member),
    )
    if output is None:
        n = export_bundle(node.store, sys.stdout, **kwargs)  # type: ignore[arg-type]
    else:
        with open(output, "w", encoding="utf-8") as fh:
            n = export_bundle(node.store, fh, **kwargs)  # type: ignore[arg-type]
    node.close()
    console.print(f"exported {n} objects")


def search(
    value: Annotated[str, typer.Argument(help="An IOC value, an object id, or a name.")],
    home: HomeOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 50,
    for_member: ForMember = None,
) -> None:
    """Find indicators whose pattern mentions VALUE, and objects by id or name (with --for,
    only among what that member may read)."""
    node = open_node(home)
    rows = node.store.search(value, limit=limit, access=_access_for(node, for_member))
    flagged = {oid for oid, _ in node.store.tagged("warninglist")} if rows else set()
    node.close()
    if not rows:
        console.print(f"nothing found for {value!r}")
        raise typer.Exit(1)
    table = Table(title=f"{len(rows)} result(s) for {value!r}")
    for col in ("type", "id", "name / pattern", "TLP", "source", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        obj = r.obj()
        what = obj.get("pattern") or obj.get("name") or ""
        note = "warning-listed" if r.id in flagged else ("revoked" if r.revoked else "")
        table.add_row(r.type, r.id, Text(str(what)[:120]), r.tlp.label, r.source, note)
    out.print(table)


def stats(home: HomeOpt = None) -> None:
    """What the node holds: objects by type, TLP and source."""
    node = open_node(home)
    s = node.store.stats()
    flagged = len(node.store.tagged("warninglist"))
    node.close()
    render_stats(s, flagged, title=f"Node {node.member}")


def render_stats(s: dict, flagged: int, title: str) -> None:  # type: ignore[type-arg]
    table = Table(title=title)
    table.add_column("STIX type")
    table.add_column("objects", justify="right")
    for t, n in sorted(s["by_type"].items(), key=lambda kv: -kv[1]):
        table.add_row(t, str(n))
    table.add_section()
    table.add_row("[bold]all objects[/]", f"[bold]{s['objects']}[/]")
    table.add_row("versions stored", str(s["versions"]))
    table.add_row("revoked", str(s["revoked"]))
    table.add_row("indicators on warning lists", str(flagged))
    out.print(table)
    t2 = Table(title="By TLP and source")
    t2.add_column("TLP")
    t2.add_column("objects", justify="right")
    for k, v in sorted(s["by_tlp"].items()):
        t2.add_row(k, str(v))
    t2.add_section()
    for k, v in sorted(s["by_source"].items()):
        t2.add_row(f"from {k}", str(v))
    out.print(t2)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command("import")(import_)
    app.command()(export)
    app.command()(search)
    app.command()(stats)
