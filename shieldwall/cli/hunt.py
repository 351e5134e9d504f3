"""`shieldwall hunt` and `shieldwall watch`: the member's telemetry against shared indicators."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shieldwall.cli.common import HomeOpt, console, counted, open_node, out
from shieldwall.errors import ShieldwallError

FORMATS = ["zeek", "suricata", "stix", "jsonl"]


def _telemetry_root(text: str) -> Path | str:
    """`--telemetry`: an object store's URI as given, else an existing directory."""
    if text.startswith("s3://"):
        return text
    if "://" in text:
        raise ShieldwallError(f"--telemetry {text.split('://')[0]}://: only a directory or "
                              "s3:// is read (docs/scale.md)")
    root = Path(text)
    if not root.is_dir():
        raise ShieldwallError(f"--telemetry {text}: no such directory")
    return root


def _parse_since(text: str) -> int:
    """`30d`, `12h`, `90m` -> microseconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if not text or text[-1] not in units or not text[:-1].isdigit():
        from shieldwall.errors import ShieldwallError

        raise ShieldwallError(f"--since {text!r}: give a number and a unit, e.g. 30d, 12h, 90m")
    return int(text[:-1]) * units[text[-1]] * 1_000_000


def _setup(home: Path | None, force: bool, window_minutes: int) -> tuple[Any, Any, Any]:
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings
    from shieldwall.store.audience import stored_marking

    node = open_node(home)
    index = IndicatorIndex(force_warninglisted=force)
    index.sync(node.store)
    if index.rejected:
        console.print(f"[yellow]{len(index.rejected)} indicator(s) not matched:[/]")
        for r in list(index.rejected.values())[:10]:  # names come from imported intel
            console.print(f"  {r.id} {r.name!r}: {r.reason}", markup=False, emoji=False,
                          highlight=False)
    sightings = Sightings(node.identity_id, node.config.sighting_tlp_level,
                          marking_of=stored_marking(node.store), member=node.member,
                          window_us=window_minutes * 60 * 1_000_000)
    return node, index, sightings


class _Blind:
    """The allies' blind sets this node holds, matched beside the plain hunt (docs/blind.md).

    A `BlindMatcher` rides the hunt as a sink: `hunt` learns every distinct value in its
    one reading pass, resolves them with their owners in large batches, and reads the files
    a second time (the event path: one `is_in` per column) only when a resolved value hits;
    `watch` resolves each batch's new values as it goes. Hits become sightings addressed to
    the owner alone (AMBER+STRICT, audience {owner, this member}) carrying the entry's
    opaque handle, never the value."""

    def __init__(self, node: Any, sets: list[Any], *, learn: bool,
                 send_for: Any = None) -> None:
        """`send_for(owner)`: how to ask `owner` (default: over the peer the node's
        configuration named when it was opened)."""
        import os

        from shieldwall.blind.hits import BlindMatcher, BlindSightings
        from shieldwall.blind.resolve import resolvers_for
        from shieldwall.cli.blind import sender

        resolvers = resolvers_for(node.store, sets,
                                  send_for or (lambda owner: sender(node, owner)),
                                  processes=os.cpu_count() or 1)
        self.node = node
        self.sightings = BlindSightings(node.member)
        self.hits = 0
        self.matcher = BlindMatcher(sets, resolvers, self._hit, learn=learn)
        self.failed: dict[str, str] = {}  # set id -> why (a retro-hunt's matcher)
        self._said = 0

    def _hit(self, hit: Any) -> None:
        self.hits += 1
        self.sightings.add(hit)

    def second_pass(self, paths: list[Path], fmt: str | None, mapping: Any) -> None:
        """Resolve what the hunt learned; on a hit, match what it kept of the files (read
        them again only when they were too large to keep)."""
        from shieldwall.detect.hunt import Hunter
        from shieldwall.detect.index import IndicatorIndex
        from shieldwall.detect.sightings import Sightings
        from shieldwall.stix.markings import TLP

        self.matcher.flush()
        if self.matcher.hitting and not self.matcher.match_kept():
            Hunter(IndicatorIndex(), Sightings(self.node.identity_id, TLP.AMBER),
                   sink=self.matcher.feed).run(paths, fmt, mapping)

    def retro(self, root: Path, since_us: int, summary_first: bool) -> None:
        """Match the kept telemetry of the last `since_us` (`hunt --since`, blind.retro)."""
        from shieldwall.blind.hits import BlindMatcher
        from shieldwall.blind.retro import retro

        matcher = BlindMatcher(self.matcher.sets, self.matcher.resolvers, self._hit,
                               learn=False)
        retro(matcher, root, since_us, summary_first=summary_first)
        self.failed.update(matcher.failed)

    def objects(self) -> list[dict[str, Any]]:
        """The blind sightings new or changed since the last call (merged with the stored)."""
        return self.sightings.objects(_latest(self.node))

    def report(self) -> None:
        """What this member's analyst may read: which owner's protected indicator matched
        which line, and which sets could not be matched; never a value."""
        for said in self.sightings.said[self._said:self._said + 50]:
            console.print(said, markup=False, emoji=False, highlight=False, soft_wrap=True)
        self._said = len(self.sightings.said)
        for why in dict.fromkeys([*self.matcher.failed.values(), *self.failed.values()]):
            console.print(f"not matched against the blind set of {why}", markup=False,
                          emoji=False, highlight=False, soft_wrap=True)


def _blind(node: Any, *, learn: bool, send_for: Any = None) -> _Blind | None:
    """A blind run when this node holds an ally's blind set; None (the plain hunt, no
    second pass) when it holds none."""
    from shieldwall.blind.sets import held_sets

    sets = list(held_sets(node.store, exclude_owner=node.member))
    return _Blind(node, sets, learn=learn, send_for=send_for) if sets else None


def _held_versions(node: Any) -> frozenset[tuple[str, int]]:
    """Which blind sets of allies the node holds, by id and version: what `watch` compares
    to see a set arrive, change or be revoked without parsing the sets each time."""
    from shieldwall.blind.sets import BLIND_SET_TYPE
    from shieldwall.store import Query

    return frozenset((r.id, r.version_us) for r in node.store.iter_query(
        Query(types=[BLIND_SET_TYPE], include_revoked=False))
        if r.created_by_ref != node.identity_id)


def _sinks(*sinks: Any) -> Any:
    """One sink calling each given one (None when none is given)."""
    given = [s for s in sinks if s is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def both(obs: Any) -> None:
        for s in given:
            s(obs)

    return both


def _sids(node: Any) -> dict[int, str]:
    """The Suricata sids this node handed out (`sensors export`): an alert logged without
    its rule's metadata still names its indicator by sid."""
    from shieldwall.outputs.sensors.sids import sid_map

    return sid_map(node.store)


def _store(node: Any, objects: list[dict[str, Any]]) -> None:
    from shieldwall.store import Provenance

    if objects:
        node.store.put_many([node.identity(), *objects], Provenance(node.member, "detect"),
                            default_tlp=node.config.sighting_tlp_level)


def _latest(node: Any) -> Any:
    def get(stix_id: str) -> dict[str, Any] | None:
        v = node.store.get(stix_id)
        return v.obj() if v is not None else None

    return get


def _report(hunter: Any, objects: list[dict[str, Any]], as_json: bool, elapsed: float) -> None:
    import orjson
    from rich.table import Table
    from rich.text import Text

    st = hunter.stats
    rate = st.events / elapsed if elapsed > 0 else 0.0
    console.print(f"{counted(st.events, 'event')} from {counted(st.files, 'file')} in "
                  f"{elapsed:.1f}s ({rate:,.0f} events/s); {counted(hunter.sightings.hits, 'hit')}")
    if st.bad_count:
        console.print(f"[yellow]{st.bad_count} corrupt line(s) skipped[/]")
        for b in st.bad[:10]:  # user-supplied text: `conn.log:100:` is not an emoji code
            console.print(f"  {b.file}:{b.line}: {b.reason}", markup=False, emoji=False,
                          highlight=False)
    if hunter.files:
        # With --json stdout holds the sightings only; the files table goes to stderr.
        (console if as_json else out).print(_files_table(hunter.files))
    if as_json:
        out.print_json(orjson.dumps([o for o in objects if o["type"] == "sighting"]).decode())
        return
    table = Table(title="Hits by indicator")
    for col in ("indicator", "name", "hits", "sightings"):
        table.add_column(col)
    for iid, (name, hits, n) in sorted(hunter.sightings.by_indicator().items(),
                                       key=lambda kv: -kv[1][1]):
        table.add_row(iid, Text(str(name or "")), f"{hits:,}", str(n))  # not markup
    out.print(table)


def _files_table(files: list[Any]) -> Any:
    """One row per file: what was read from it and what happened to it (file names and
    notes are the user's text, never markup)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Files")
    for col in ("file", "format", "events", "hits", "bad lines", "note"):
        table.add_column(col, justify="right" if col in ("events", "hits", "bad lines")
                         else "left", overflow="fold")
    for r in files:
        note = r.outcome if r.outcome != "read" else ""
        if r.note:
            note = f"{note}: {r.note}" if note else r.note
        table.add_row(Text(r.file), r.format, f"{r.events:,}", f"{r.hits:,}",
                      f"{r.bad_lines:,}", Text(note))
    return table


def _exit_code(files: list[Any]) -> int:
    """0: every file read (corrupt lines counted and skipped) or deliberately skipped;
    1: a file's stream was cut short (what came before the cut was read);
    2: a file could not be read at all (or, named on the command line, is not telemetry)."""
    outcomes = {r.outcome for r in files}
    return 2 if "failed" in outcomes else 1 if "cut" in outcomes else 0


def hunt(
    paths: Annotated[list[Path] | None, typer.Argument(help="Log files or directories.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force: zeek, suricata, stix, "
                                            "jsonl (default: detect).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Field mapping for --format jsonl.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sightings as JSON.")] = False,
    since: Annotated[str | None, typer.Option(
        help="Retro-hunt stored telemetry, e.g. 30d.")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the telemetry (Parquet) for retro-hunts.")]
    = True,
    force_warninglisted: Annotated[bool, typer.Option(
        help="Also match indicators on a warning list.")] = False,
    window: Annotated[int, typer.Option(help="Sighting window in minutes.")] = 60,
    engine: Annotated[str, typer.Option(
        help="Where --since runs: duckdb (this machine) or spark.")] = "duckdb",
    master: Annotated[str | None, typer.Option(
        help="Spark master for --engine spark: local[2] (default), spark://host:7077.")]
    = None,
    full_scan: Annotated[bool, typer.Option(
        help="--since: scan every stored event instead of the per-day summaries first.")]
    = False,
    telemetry: Annotated[str | None, typer.Option(
        help="--since: the kept telemetry to read instead of the node's: a directory, or "
             "s3://bucket/prefix (credentials from the AWS environment; an endpoint as "
             "?endpoint_override=host:port&scheme=http). DuckDB engine.")] = None,
    home: HomeOpt = None,
) -> None:
    """Match logs against the node's active indicators and record sightings.

    The allies' blind sets this node holds are matched too: their hits become sightings
    for each set's owner alone (docs/blind.md).

    Every file is read or skipped with a note, and the run ends with a table of files. Exit
    code 0: every file read (corrupt lines counted and skipped) or skipped (not telemetry:
    a CSV, a Zeek stats log); 1: a compressed stream was cut short (the lines before the
    cut were read); 2: a file could not be read at all."""
    from rich.progress import Progress, TextColumn

    from shieldwall.detect.readers import ReaderError
    from shieldwall.detect.readers.jsonl import load_mapping
    from shieldwall.detect.sensor_hunt import SensorHunter

    if fmt is not None and fmt not in FORMATS:
        raise ReaderError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not paths and not since:
        raise ReaderError("give log files or directories, or --since for a retro-hunt")
    since_us = _parse_since(since) if since else 0
    if telemetry is not None and not since:
        raise ReaderError("--telemetry is for a retro-hunt (--since)")
    if engine != "duckdb" or master:
        if not since:
            raise ReaderError("--engine and --master are for a retro-hunt (--since)")
        from shieldwall.detect.engines import open_engine

        # Started (and checked: Java, pyspark, the master) before the indicators load.
        engine_run: Any = open_engine(engine, master)
    else:
        engine_run = engine
    node, index, sightings = _setup(home, force_warninglisted, window)
    try:
        sink = None
        if keep and paths:
            from shieldwall.detect.retro import TelemetryStore

            sink = TelemetryStore(node.config.home / "telemetry").write
        blind = _blind(node, learn=False)
        hunter = SensorHunter(index, sightings,
                              _sinks(sink, blind.matcher.learn if blind and paths else None),
                              _sids(node))
        started = time.perf_counter()
        if since:
            from shieldwall.detect.retro import retro_hunt

            ran: dict[str, Any] = {}
            kept = _telemetry_root(telemetry) if telemetry else node.config.home / "telemetry"
            try:
                retro_hunt(kept, index, hunter, since_us,
                           timings=ran, engine=engine_run, summary_first=not full_scan)
            finally:
                if not isinstance(engine_run, str):
                    engine_run.close()
            if ran.get("summarised"):  # telemetry kept before summaries: built as needed
                console.print(f"summarised {counted(ran['summarised'], 'event file')} kept "
                              "without a summary")
            if blind is not None and isinstance(kept, Path):  # the allies' blind sets too
                blind.retro(kept, since_us, not full_scan)
            elif blind is not None:
                console.print("blind sets: not matched over an object store (docs/blind.md)")
        if paths:
            m = load_mapping(mapping) if mapping else None
            with Progress(TextColumn("{task.description}"), TextColumn("{task.completed:,} events"),
                          TextColumn("{task.fields[rate]}"), console=console,
                          transient=True) as progress:
                task = progress.add_task("hunting", total=None, rate="")

                def advance(n: int) -> None:
                    el = time.perf_counter() - started
                    progress.update(task, advance=n,
                                    rate=f"{progress.tasks[0].completed / el:,.0f} events/s"
                                    if el else "")

                hunter.run(paths, fmt, m, advance)
            if blind is not None:
                blind.second_pass(paths, fmt, m)
        else:
            hunter.finish()
        # A retro-hunt recounts its range: merged with the stored sightings, a re-run over
        # the same telemetry writes no new version (detect.sightings.Sightings.objects).
        objects = hunter.sightings.objects(stored=_latest(node) if since else None)
        if blind is not None:
            objects += blind.objects()
        _store(node, objects)
        from shieldwall.observe.counters import record_hunt  # /metrics: events hunted

        record_hunt(node.store, hunter.stats.events, time.perf_counter() - started)
        _report(hunter, objects, as_json, time.perf_counter() - started)
        if blind is not None:
            blind.report()
            console.print(f"{counted(blind.hits, 'blind hit')} on protected indicators of "
                          f"allies; {counted(len(blind.sightings.windows), 'sighting')} "
                          "for their owners only")
    finally:
        node.close()
    for r in hunter.files:  # one line each on stderr too, as other commands do
        if r.outcome == "failed":
            console.print(f"shieldwall: error: {r.file}: {r.note}", markup=False, emoji=False,
                          highlight=False)
    code = _exit_code(hunter.files)
    if code:
        raise typer.Exit(code)


def watch(
    path: Annotated[Path, typer.Argument(help="A log file to follow (as tail -F).")],
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    from_start: Annotated[bool, typer.Option(help="Read what the file holds already.")] = False,
    window: Annotated[int, typer.Option(help="Sighting window in minutes.")] = 60,
    force_warninglisted: Annotated[bool, typer.Option(
        help="Also match indicators on a warning list.")] = False,
    resync: Annotated[float, typer.Option(
        help="Seconds between looks for new, changed and expired indicators and blind "
             "sets.")] = 30.0,
    home: HomeOpt = None,
) -> None:
    """Follow a growing log, surviving rotation, and record sightings as they happen."""
    from shieldwall.detect.sensor_hunt import SensorHunter, SensorWatcher

    node, index, sightings = _setup(home, force_warninglisted, window)
    from shieldwall.cli.blind import senders

    # A watch runs for days: sets and the peers to resolve them with are read anew.
    send_for = senders(node.config.home)
    held = _held_versions(node)
    # One pass: each batch's new values resolved as read.
    blind = _blind(node, learn=True, send_for=send_for)

    def blind_sink(obs: Any) -> None:  # the sets held now: they change as allies publish
        if blind is not None:
            blind.matcher.feed(obs)

    hunter = SensorHunter(index, sightings, blind_sink, sids=_sids(node))
    watcher = SensorWatcher(hunter, path, from_start=from_start, metrics=node.store)  # /metrics
    last_sync = time.monotonic()
    blind_hits = 0

    def on_poll(hits: int) -> None:
        nonlocal last_sync, blind_hits, blind, held
        if hits:
            objs = hunter.objects()
            _store(node, objs)
            console.print(f"{hits} hit(s); {sum(o['type'] == 'sighting' for o in objs)} "
                          "sighting(s) recorded")
        if blind is not None and blind.hits > blind_hits:
            objs = blind.objects()
            _store(node, objs)
            blind.report()
            console.print(f"{blind.hits - blind_hits} blind hit(s); {len(objs)} sighting(s) "
                          "for the owners only")
            blind_hits = blind.hits
        if time.monotonic() - last_sync > resync:  # new and expired indicators, incrementally
            index.sync(node.store)
            if (now := _held_versions(node)) != held:  # a set arrived, changed or went
                held, blind, blind_hits = now, _blind(node, learn=True, send_for=send_for), 0
                console.print(f"now matching {len(now)} blind set(s) of allies")
            last_sync = time.monotonic()

    console.print(f"watching {path} against {len(index):,} indicators (Ctrl-C to stop)",
                  markup=False, emoji=False, highlight=False)  # a path is not markup
    try:
        watcher.run(interval=interval, on_poll=on_poll)
    finally:
        watcher.flush_metrics()
        node.close()


def register(app: typer.Typer) -> None:
    app.command("hunt")(hunt)
    app.command("watch")(watch)
