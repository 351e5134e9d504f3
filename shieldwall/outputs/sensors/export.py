"""Write every requested sensor output from one active set, atomically and deterministically.

Each output file is its header plus the texts of the active set's buckets in bucket order,
each bucket's lines sorted: the same store state gives the same bytes, and a change
re-renders only the buckets it touched (`active.BUCKETS`). A file is replaced (temporary
file in the same directory, fsync, rename) only when its text changed, so a sensor that
watches its files reloads only what is new. Each output directory (or file) gets a
`skipped.tsv` beside it: the active indicators it does not hold, each with the reason.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shieldwall.outputs.sensors import csv_export, rpz, suricata, zeek_intel
from shieldwall.outputs.sensors.active import BUCKETS, ActiveSet, Entry
from shieldwall.outputs.sensors.sids import LOCAL_FIRST, LOCAL_LAST, SidBook
from shieldwall.outputs.sensors.text import reason_line
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import now_us
from shieldwall.store import Access, Store

SKIPPED = "skipped.tsv"
SKIPPED_HEADER = "id\treason\n"
# (file, line) for an entry, or the reason it has none in the output ("": none, not listed)
Renderer = Callable[[Entry], tuple[str, str] | str]


@dataclass
class Targets:
    zeek: Path | None = None  # a directory
    suricata: Path | None = None  # a directory
    rpz: Path | None = None  # a file
    csv: Path | None = None  # a file

    def any(self) -> bool:
        return any(t is not None for t in (self.zeek, self.suricata, self.rpz, self.csv))


@dataclass
class Report:
    """What one export wrote: values per output, files replaced, skipped per output."""

    exported: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    changed: bool = False


class Exporter:
    """The outputs of one audience; call `run` once, then again whenever (`watch`)."""

    def __init__(self, store: Store, targets: Targets, access: Access | None = None,
                 tlp_max: TLP | None = None,
                 sid_range: tuple[int, int] = (LOCAL_FIRST, LOCAL_LAST)) -> None:
        self.store = store
        self.targets = targets
        self.active = ActiveSet(store, access, tlp_max)
        self.book = SidBook(store, *sid_range) if targets.suricata else None
        self.outputs: dict[str, tuple[Path, Renderer]] = {}
        if targets.zeek:
            self.outputs["zeek"] = (targets.zeek, zeek_intel.render)
        if targets.suricata:
            book = self.book
            assert book is not None
            self.outputs["suricata"] = (targets.suricata, lambda e: suricata.render(e, book))
        if targets.rpz:
            self.outputs["rpz"] = (targets.rpz, rpz.render)
        if targets.csv:
            self.outputs["csv"] = (targets.csv, csv_export.render)
        # (output, file) -> bucket -> text and line count; files whose text changed
        self.texts: dict[tuple[str, str], list[str]] = {}
        self.counts: dict[tuple[str, str], list[int]] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.hashes: frozenset[str] = frozenset()  # hash lists with entries (their rules)
        self.loaded = False

    def run(self, now: int | None = None) -> Report:
        """Bring every output up to date with the store; returns what it did."""
        now = now_us() if now is None else now
        with _gc_paused():
            if not self.loaded:
                self.active.load(now)
                self.loaded = True
                changed = True
            else:
                changed = self.active.refresh(now)
            if changed:
                self._render(self.active.changed_buckets, now)
                self.active.changed_buckets = set()
        report = Report()
        if changed and self.book is not None:
            self.book.flush()
            hashes = frozenset(k for k, name in suricata.HASH_LISTS.items()
                               if sum(self.counts[("suricata", name)]))
            if hashes != self.hashes:  # a hash list's rules come or go
                self.hashes = hashes
                self.dirty.add(("suricata", suricata.RULES))
        for (out, name), _texts in self.texts.items():
            n = sum(self.counts[(out, name)])
            if name == SKIPPED:
                report.skipped[out] = report.skipped.get(out, 0) + n
            else:
                report.exported[out] = report.exported.get(out, 0) + n
        for key in sorted(self.texts):
            path = self._path(*key)
            if key in self.dirty or not path.exists():
                write_atomic(path, [self._header(*key), *self.texts[key]])
                report.written.append(path)
        self.dirty = set()
        report.changed = bool(report.written)
        return report

    # ---- internals -----------------------------------------------------------------

    def _render(self, buckets: set[int], now: int) -> None:
        """Re-render `buckets` of every output; files whose text changed become dirty."""
        for out in self.outputs:
            for name in _files(out):
                self.texts.setdefault((out, name), [""] * BUCKETS)
                self.counts.setdefault((out, name), [0] * BUCKETS)
        # per output: its renderer, and per file its key and bucket texts and counts
        renders = [(render, [((out, name), self.texts[(out, name)], self.counts[(out, name)])
                             for name in _files(out)])
                   for out, (_, render) in self.outputs.items()]
        dirty = self.dirty
        for b in sorted(buckets):
            entries = self.active.active_in(b, now)
            for render, files in renders:
                lines: dict[str, list[str]] = {}
                for e in entries:
                    got = render(e)
                    if type(got) is tuple:
                        name, line = got
                    elif got:
                        name, line = SKIPPED, reason_line(e.id, got)
                    else:
                        continue
                    held = lines.get(name)
                    if held is None:
                        lines[name] = [line]
                    else:
                        held.append(line)
                for key, texts, counts in files:
                    got_lines = lines.get(key[1])
                    if got_lines is None:
                        if texts[b]:
                            texts[b], counts[b] = "", 0
                            dirty.add(key)
                        continue
                    got_lines.sort()
                    text = "".join(got_lines)
                    if text != texts[b]:
                        texts[b], counts[b] = text, len(got_lines)
                        dirty.add(key)

    def _path(self, out: str, name: str) -> Path:
        base = self.outputs[out][0]
        if out in ("rpz", "csv"):
            return base if name != SKIPPED else base.with_name(base.name + "." + SKIPPED)
        return base / name

    def _header(self, out: str, name: str) -> str:
        if name == SKIPPED:
            return SKIPPED_HEADER
        if out == "zeek":
            return zeek_intel.HEADER
        if out == "rpz":
            return rpz.header(self.active.cursor)
        if out == "csv":
            return csv_export.HEADER
        if name == suricata.RULES:
            assert self.book is not None
            return ("# Shieldwall: shared indicators for Suricata (generated; do not edit)\n"
                    + suricata.dataset_rules(self.book, self.hashes))
        return ""


def _files(out: str) -> list[str]:
    if out == "zeek":
        return [zeek_intel.FILE, SKIPPED]
    if out == "suricata":
        return [suricata.RULES, *suricata.SETS.values(), *suricata.HASH_LISTS.values(),
                SKIPPED]
    return [rpz.FILE if out == "rpz" else csv_export.FILE, SKIPPED]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the active set is read and rendered.

    A full export makes millions of container objects that live on (an entry and a form
    per indicator) or die young (each row's parsed JSON), and the collector walked the
    survivors again and again as they grew. Paused, the survivors would still be walked
    three times once it resumes (young, middle, then a full collection, ~1.8 s at a
    million), so they are moved to the oldest generation at once (`freeze` then
    `unfreeze`: a list splice, no walk), where only the next full collection looks at
    them, as it would have. Skipped when something else in the process froze objects.
    Nothing made here holds a reference cycle: refcounting frees it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def write_atomic(path: Path, text: str | list[str]) -> None:
    """Replace `path` with `text` (or its parts, written in turn: a 100 MB file is never one
    string) at once: a sensor reading it sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
