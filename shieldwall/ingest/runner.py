"""`shieldwall import`, as a function: read, validate, flag, store, report.

Every format's reader yields STIX objects; this module validates them, stores them in
batches (each batch one transaction, so a killed import loses at most one batch and a
re-run finds the rest as duplicates), flags indicators on warning lists, and counts
what happened per file.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing as mp
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from queue import Full
from typing import TYPE_CHECKING, Any

from shieldwall.errors import ShieldwallError
from shieldwall.ingest.base import Format, ImportError_, ReadOptions, Rejected, formats
from shieldwall.ingest.sniff import head_of, looks_binary, open_maybe_gzip
from shieldwall.stix.markings import TLP, declared_tlp, stricter
from shieldwall.stix.timestamps import now_us
from shieldwall.stix.validate import object_error, validate_strict
from shieldwall.store.prepare import PreparedVersion, Unprepared, prepare_many
from shieldwall.store.types import Provenance

if TYPE_CHECKING:
    from shieldwall.store import Store

# Given an indicator, the warning lists it hits, as (list name, matched value).
Flagger = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass
class FileReport:
    path: str
    format: str
    read: int = 0
    new: int = 0
    new_versions: int = 0
    history: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    warninglisted: list[tuple[str, str, str]] = field(default_factory=list)  # id, value, list
    error: str | None = None  # why the file (or its rest) could not be imported

    @property
    def stored(self) -> int:
        return self.new + self.new_versions + self.history


def detect_format(path: Path, forced: str | None = None) -> Format:
    known = formats()
    if forced:
        if forced not in known:
            raise ImportError_(f"unknown format {forced!r} (known: {', '.join(sorted(known))})")
        return known[forced]
    head = head_of(path)
    if not head:
        raise ImportError_(f"{path}: empty file")
    if looks_binary(head):
        raise ImportError_(f"{path}: binary data, not a STIX, MISP, CSV or text file")
    for fmt in known.values():
        if fmt.sniff(head, path):
            return fmt
    raise ImportError_(f"{path}: format not recognised; use --format ({', '.join(known)})")


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        elif p.exists():
            yield p
        else:
            raise ImportError_(f"{p}: no such file or directory")


@dataclass
class _Batch:
    """One batch, ready for the store: what the reader and the validator made of it."""

    rows: list[PreparedVersion | tuple[Any, ...]]
    rejected: list[Rejected]
    read: int
    flags: list[tuple[str, str, str]]  # id, list name, reason
    # Indicators the worker left for the writer to check (see `_batches`' `share`).
    unchecked: list[dict[str, Any]] = field(default_factory=list)


def _batches(
    path: Path,
    format_: Format,
    opts: ReadOptions,
    check: Callable[[Any], str | None],
    default_tlp: TLP,
    overrides: dict[str, TLP],
    flagger: Flagger | None,
    batch_size: int,
    share: Callable[[], bool] | None = None,
    late: Callable[[], tuple[TLP, dict[str, TLP]]] | None = None,
) -> Iterator[_Batch]:
    """The CPU-bound half of an import: read, validate, prepare rows, check warning lists.

    `share` (in a worker), asked as each batch starts: True leaves every other indicator
    of the batch for the writer to check. A check costs about as much as reading,
    validating and preparing an indicator (~10 µs), so which process checks decides which
    one the other waits for: the worker shares while the writer waits for batches (see
    `_writer_waiting`) and checks alone while batches queue up.

    `late` (a worker started before the node was open, see `prefetch`): gives the default
    level and the stored overrides, waiting for them, when the first batch is prepared;
    `default_tlp` and `overrides` are ignored. Definitions read before then count as well.
    """
    now = now_us()
    batch = _Batch([], [], 0, [])
    shared = share is not None and share()
    valid: list[dict[str, Any]] = []
    early: list[dict[str, Any]] = []  # definitions read while `late` is pending

    def finish(b: _Batch) -> _Batch:
        nonlocal default_tlp, overrides, late
        if late is not None:
            default_tlp, overrides = late()
            declared_tlp(early, overrides)
            late = None
            early.clear()
        # Rows are prepared at the end of the batch so that a marking definition
        # anywhere in the batch already counts for every object in it. Plain tuples,
        # not named ones: a batch is pickled to the writer process (see PreparedVersion).
        for p in prepare_many(valid, now, default_tlp, overrides):
            if type(p) is Unprepared:
                b.rejected.append(Rejected(p.id, p.reason))
            else:
                b.rows.append(tuple(p))
        valid.clear()
        return b

    for item in format_.read(path, opts):
        batch.read += 1
        if isinstance(item, Rejected):
            batch.rejected.append(item)
            continue
        if item.get("type") == "marking-definition":
            # Honour the level a marking declares even if the definition itself is invalid
            # (custom ids for TLP): falling back to the default could widen the audience.
            # Already known from the pre-pass (`defined_markings`); where the id is also
            # stored, the stricter level wins: redefining it cannot lower what it marks.
            declared_tlp((item,), overrides)
            if late is not None:
                early.append(item)
        err = check(item)
        if err is not None:
            batch.rejected.append(Rejected(str(item.get("id", "?")), err))
            continue
        valid.append(item)
        if flagger is not None and item.get("type") == "indicator":
            if shared and len(valid) % 2:
                batch.unchecked.append({k: item[k] for k in _CHECKED if k in item})
            else:
                batch.flags.extend((item["id"], name, why) for name, why in flagger(item))
        if len(valid) >= batch_size:
            yield finish(batch)
            batch = _Batch([], [], 0, [])
            shared = share is not None and share()
    if batch.read:
        yield finish(batch)


_DEFINITION = b'"marking-definition"'  # the type's value; a reference has "--<uuid>" after it
# Positions kept; past that many the file is read instead. With `_TRIES` parses of at most
# two windows each, a hostile file costs at most ~200 MB of scanning here.
_AT_MOST = 100
_TRIES = 16
_WINDOW = 1 << 16  # bytes read either side of a definition's type to parse it alone


def _definitions_in(path: Path) -> tuple[int, list[int]]:
    """How many times the raw (decompressed) text holds `"marking-definition"`, every
    marking definition's type: at least how many definitions the file holds (a key or
    another value spelled so counts too), and where (the first `_AT_MOST`). A byte scan:
    45 ms for 45 MB measured, against 450 ms for parsing the file."""
    n, tail, at, base = 0, b"", [], 0
    with open_maybe_gzip(path) as fh:
        while chunk := fh.read(1 << 20):
            buf = tail + chunk
            found = buf.count(_DEFINITION)
            if found and len(at) < _AT_MOST:
                i = buf.find(_DEFINITION)
                while i >= 0 and len(at) < _AT_MOST:
                    at.append(base - len(tail) + i)
                    i = buf.find(_DEFINITION, i + 1)
            n += found
            tail = buf[-(len(_DEFINITION) - 1):]
            base += len(chunk)
    return n, at


def _gzipped(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _definitions_at(path: Path, at: list[int]) -> list[dict[str, Any]] | None:
    """The marking definitions whose type stands at the byte positions `at` of a plain
    JSON file, each parsed alone from a window around it (the nearest `{` before it that
    opens an object holding it); None when one cannot be, and the caller reads the file.
    A definition at the end of a 45 MB bundle then costs a few reads, not a second parse.
    Text is read as Latin-1 so that offsets stay bytes: a definition's TLP words are ASCII.
    """
    decoder = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for pos in at:
            lo = max(0, pos - _WINDOW)
            fh.seek(lo)
            text = fh.read(2 * _WINDOW).decode("latin-1")
            here, cur, obj = pos - lo, pos - lo, None
            for _ in range(_TRIES):
                cur = text.rfind("{", 0, cur)
                if cur < 0:
                    break
                try:
                    value, end = decoder.raw_decode(text, cur)
                except (ValueError, RecursionError):  # not JSON from here, or too deep
                    continue
                if end > here and isinstance(value, dict) \
                        and value.get("type") == "marking-definition":
                    obj = value
                    break
            if obj is None:
                return None
            out.append(obj)
    return out


def defined_markings(
    paths: Iterable[Path], *, producer: dict[str, Any], tlp: TLP | None = None,
    fmt: str | None = None,
) -> dict[str, TLP]:
    """The custom TLP levels the marking definitions in these files declare: what one
    import applies to every object it stores, whatever the position of a definition in
    its file or the order of its files (a producer's "TLP:RED" definition after the first
    batch of 5,000 would otherwise come too late for that batch).

    A cheap pre-pass: a file whose bytes name no marking definition is not parsed; in a
    plain STIX file each definition is parsed alone where the byte scan found it; any
    other file that names one is read up to its last definition (streamed, in bounded
    memory), which costs almost nothing where producers put definitions, at the head.
    A file that cannot be read is left to the import, which reports it.
    """
    found: dict[str, TLP] = {}
    opts = ReadOptions(producer=producer, tlp=tlp)
    for path in paths:
        try:
            expected, at = _definitions_in(path)
            if not expected:
                continue
            format_ = detect_format(path, fmt)
            if format_.name == "stix" and len(at) == expected and not _gzipped(path):
                alone = _definitions_at(path, at)
                if alone is not None:
                    declared_tlp(alone, found)
                    continue
            seen = 0
            for item in format_.read(path, opts):
                if isinstance(item, dict) and item.get("type") == "marking-definition":
                    declared_tlp((item,), found)
                    seen += 1
                    if seen >= expected:
                        break
        except (ShieldwallError, OSError, EOFError, ValueError):
            continue
    return found


# What a warning-list check reads of an indicator (all the worker hands over unchecked).
_CHECKED = ("id", "type", "pattern", "pattern_type")


# Files smaller than this are prepared in-process: a worker costs more than it saves.
_PARALLEL_MIN_BYTES = 2 * 1024 * 1024


def import_file(
    store: Store,
    path: Path,
    *,
    source: str,
    producer: dict[str, Any],
    default_tlp: TLP,
    tlp: TLP | None = None,
    fmt: str | None = None,
    flagger: Flagger | None = None,
    strict: bool = False,
    batch_size: int = 5_000,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
    markings: Mapping[str, TLP] | None = None,
    prefetched: Prefetch | None = None,
) -> FileReport:
    """Import one file. Raises ImportError_ when the file as a whole is unusable.

    `prefetched`: the worker `prefetch` started for this file (same format, TLP, strict
    and warning-list choices); it gets this node's settings here and its batches are
    written as they come.

    `markings`: the custom TLP definitions of the whole import (`defined_markings` over
    all its files); None reads this file's own first. With those the import applies the
    definitions stored by `source` (this node), never another member's.

    Large files are prepared in a worker process while this one writes: reading,
    validating and canonicalising is half of an import's CPU time and the database
    writes the other half, so on two cores the two halves overlap.
    """
    # Imported here: a worker `prefetch` forks before the node is open must not need them.
    from shieldwall.store.audience import record_tlp_definitions, stored_tlp_markings

    format_ = detect_format(path, fmt)
    report = FileReport(str(path), format_.name)
    opts = ReadOptions(producer=producer, tlp=tlp)
    check = validate_strict if strict else object_error
    if markings is None:
        markings = defined_markings([path], producer=producer, tlp=tlp, fmt=fmt)
    record_tlp_definitions(store, source, markings)
    overrides = stricter(stored_tlp_markings(store, [source]), markings)
    args = (path, format_, opts, check, tlp if tlp is not None else default_tlp,
            overrides, flagger, batch_size)
    if prefetched is not None:
        # A worker that already failed (a file cut before its first batch) has closed its
        # end: its error waits in the queue, and `_drain` raises it.
        with contextlib.suppress(BrokenPipeError):
            prefetched.settings.send((producer, args[4], overrides))
        batches: Iterator[_Batch] = _drain(prefetched.worker, prefetched.queue)
    elif parallel is None:
        parallel = path.stat().st_size >= _PARALLEL_MIN_BYTES
    if prefetched is None and not parallel:
        return _write_batches(store, _batches(*args), report, source, progress)
    if prefetched is None:
        batches = _in_worker(args)
    # The writer too collects rarely while it runs (see _IMPORT_GC_THRESHOLDS).
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_IMPORT_GC_THRESHOLDS)
    try:
        return _write_batches(store, batches, report, source, progress, flagger)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _write_batches(
    store: Store,
    batches: Iterable[_Batch],
    report: FileReport,
    source: str,
    progress: Callable[[int], None] | None,
    flagger: Flagger | None = None,
) -> FileReport:
    try:
        _write_each(store, batches, report, source, progress, flagger)
    except PartialImport:
        raise
    except ImportError_ as exc:
        if report.read:  # batches stored before the file failed (a cut stream): count them
            raise PartialImport(str(exc), report) from None
        raise
    return report


class PartialImport(ImportError_):
    """A file that failed after part of it was stored; `report` counts that part."""

    def __init__(self, message: str, report: FileReport) -> None:
        super().__init__(message)
        self.report = report


def _write_each(
    store: Store,
    batches: Iterable[_Batch],
    report: FileReport,
    source: str,
    progress: Callable[[int], None] | None,
    flagger: Flagger | None,
) -> None:
    # Warning-list tags are written every `_TAG_ROWS` rows (a transaction of their own), as
    # the batches come: written all at the end (50,000 rows), they were ~0.2 s the worker
    # no longer overlapped, of the bench's 3.8 s (docs/benchmarks.md).
    tags: dict[tuple[str, str], tuple[str, str, str]] = {}
    try:
        for batch in batches:
            _write_one(store, batch, report, source, flagger, tags)
            if len(tags) >= _TAG_ROWS:
                store.tag(tags.values())
                tags.clear()
            if progress is not None:
                progress(batch.read)
    finally:
        if tags:  # also when the file fails midway: its stored batches keep their tags
            store.tag(tags.values())


_TAG_ROWS = 5_000


def _write_one(
    store: Store,
    batch: _Batch,
    report: FileReport,
    source: str,
    flagger: Flagger | None,
    tags: dict[tuple[str, str], tuple[str, str, str]],
) -> None:
    """Store one batch; its warning-list tags join `tags` (a later batch's replace them)."""
    report.read += batch.read
    report.rejected.extend(batch.rejected)
    result = store.put_prepared(batch.rows, Provenance(source, "import"))
    report.new += result.new
    report.new_versions += result.new_versions
    report.history += result.history
    report.duplicates += result.duplicates
    report.rejected.extend(Rejected(i, r) for i, r in result.rejected)
    if batch.unchecked and flagger is not None:
        batch.flags.extend((ind["id"], name, why) for ind in batch.unchecked
                           for name, why in flagger(ind))
    for row in _flag(batch.flags, report):
        tags[row[0], row[1]] = row


def _in_worker(args: tuple[Any, ...]) -> Iterator[_Batch]:
    """Run `_batches` in a forked process, handing batches over a bounded queue."""
    ctx = mp.get_context("fork")
    queue: Any = ctx.Queue(maxsize=2)  # bounded: at most ~3 batches in memory at once
    args = (*args, lambda: _writer_waiting(queue))
    worker = ctx.Process(target=_produce, args=(queue, args, os.getpid()), daemon=True)
    worker.start()
    return _drain(worker, queue)


def _writer_waiting(queue: Any) -> bool:
    """Will the writer wait for the next batch (nothing queued but the batch just handed
    over)? Then the worker shares the checks; while batches queue up, it checks alone."""
    try:
        return queue.qsize() <= 1  # type: ignore[no-any-return]
    except NotImplementedError:  # no sem_getvalue (macOS): share always, as before
        return True


@dataclass
class Prefetch:
    """An import's worker, started by `prefetch` before the node was opened."""

    worker: Any
    queue: Any
    settings: Any  # the pipe end `import_file` sends (producer, default TLP, overrides) on

    def close(self) -> None:
        """Stop the worker (the import failed before reading its batches)."""
        if self.worker.is_alive():
            self.worker.terminate()
        self.worker.join()


# Formats whose reader takes nothing from the node (a STIX bundle names its own producers):
# a prefetching worker reads them before the node's settings arrive.
_READS_ALONE = frozenset({"stix"})


def prefetch(path: Path, *, fmt: str | None, tlp: TLP | None, strict: bool,
             warninglists: bool, batch_size: int = 5_000) -> Prefetch | None:
    """Start preparing a large file in a worker before the command opens the node.

    Opening a node imports SQLAlchemy and pydantic and checks the schema: ~0.45 s in which
    the worker, the slower half of an import, would otherwise wait (the 100k bench's
    import: 3.49 s). Forked first, the worker reads, validates and checks a STIX bundle
    meanwhile and waits for the node's settings only to prepare its first batch's rows.
    None for a file too small for a worker or not a regular file (`import_file` decides).
    """
    try:
        if not path.is_file() or path.stat().st_size < _PARALLEL_MIN_BYTES:
            return None
    except OSError:
        return None
    ctx = mp.get_context("fork")
    queue: Any = ctx.Queue(maxsize=2)
    receive, send = ctx.Pipe(duplex=False)
    spec = (path, fmt, tlp, strict, warninglists, batch_size)
    worker = ctx.Process(target=_produce_early, args=(queue, receive, spec, os.getpid()),
                         daemon=True)
    worker.start()
    receive.close()
    return Prefetch(worker, queue, send)


def _produce_early(queue: Any, receive: Any, spec: tuple[Any, ...], parent: int) -> None:
    path, fmt, tlp, strict, warninglists, batch_size = spec

    def settings() -> tuple[dict[str, Any], TLP, dict[str, TLP]]:
        while not receive.poll(1):
            if os.getppid() != parent:  # the command failed or was killed: write nothing
                os._exit(0)
        return receive.recv()  # type: ignore[no-any-return]

    def late() -> tuple[TLP, dict[str, TLP]]:
        _, default_tlp, overrides = settings()
        return default_tlp, overrides

    def batches() -> Iterator[_Batch]:
        format_ = detect_format(path, fmt)
        flagger: Flagger | None = None
        if warninglists:
            from shieldwall.ingest.warninglists import check_indicator

            flagger = check_indicator
        check = validate_strict if strict else object_error
        if format_.name in _READS_ALONE:
            opts = ReadOptions(producer={}, tlp=tlp)
            yield from _batches(path, format_, opts, check, TLP.CLEAR, {}, flagger,
                                batch_size, lambda: _writer_waiting(queue), late)
        else:
            producer, default_tlp, overrides = settings()
            yield from _batches(path, format_, ReadOptions(producer=producer, tlp=tlp),
                                check, default_tlp, overrides, flagger, batch_size,
                                lambda: _writer_waiting(queue))

    _produce(queue, batches(), parent)


def _drain(worker: Any, queue: Any) -> Iterator[_Batch]:
    """The batches a worker hands over, until it is done; its error raised here."""
    try:
        while True:
            kind, payload = queue.get()
            if kind == "batch":
                yield payload
            elif kind == "error":
                raise ImportError_(payload)
            else:
                return
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()


# Collector thresholds while an import's worker runs: a full collection rescans every
# live object about every 70,000 allocations, and a batch allocates ~15 objects per
# STIX object; the worker freezes what it inherited and collects rarely instead,
# 2 µs an object (of ~14) measured. Cycles are rare here, so memory stays bounded.
_IMPORT_GC_THRESHOLDS = (50_000, 20, 100)


def _produce(queue: Any, args: tuple[Any, ...] | Iterator[_Batch], parent: int) -> None:
    """The worker: `args` are `_batches`' (or the batches themselves, `_produce_early`)."""
    gc.freeze()
    gc.set_threshold(*_IMPORT_GC_THRESHOLDS)

    def put(item: tuple[str, Any]) -> None:
        while True:
            try:
                queue.put(item, timeout=1)
                return
            except Full:
                if os.getppid() != parent:  # the importer was killed: stop, write nothing
                    os._exit(0)

    try:
        for batch in (_batches(*args) if isinstance(args, tuple) else args):
            put(("batch", batch))
        put(("done", None))
    except ShieldwallError as exc:
        put(("error", str(exc)))
    except Exception as exc:
        put(("error", f"{type(exc).__name__}: {exc}"))


# Lists that say what a piece of infrastructure *is*, not that it is benign: a C2 domain
# under a dynamic-DNS provider or a C2 address in a datacenter range must still alert.
_INFRASTRUCTURE_LIST = re.compile(r"dynamic dns|vpn|data ?cent|hosting", re.IGNORECASE)


def benign_hit(list_name: str, reason: str) -> bool:
    """Does this warning-list hit mean 'known benign, do not alert'?

    Only when the value itself is on a list of benign values. A partial hit (a parent
    domain, "x.example.com is under example.com", from popularity lists such as Tranco;
    a substring, "fbi.zyns.com contains zyns.com") or a hit on an infrastructure list
    is kept as information for the analyst (tag `warninglist-info`), and the indicator
    still alerts.
    """
    partial = " is under " in reason or " contains " in reason
    return not (partial or _infrastructure(list_name))


@cache
def _infrastructure(list_name: str) -> bool:
    """Is this an infrastructure list (`_INFRASTRUCTURE_LIST`)? Asked once per list name:
    an import asks for every hit (100,000 in the bench's bundle)."""
    return _INFRASTRUCTURE_LIST.search(list_name) is not None


def _flag(flags: list[tuple[str, str, str]], report: FileReport) -> list[tuple[str, str, str]]:
    """The tags for one batch's warning-list hits: `warninglist` (benign) or
    `warninglist-info`, each with every list and reason; benign ones are reported."""
    benign: dict[str, list[str]] = {}
    info: dict[str, list[str]] = {}
    for oid, list_name, reason in flags:
        if benign_hit(list_name, reason):
            report.warninglisted.append((oid, reason, list_name))
            benign.setdefault(oid, []).append(f"{list_name}: {reason}")
        else:
            info.setdefault(oid, []).append(f"{list_name}: {reason}")
    return ([(oid, "warninglist", "; ".join(v)) for oid, v in benign.items()]
            + [(oid, "warninglist-info", "; ".join(v)) for oid, v in info.items()])
