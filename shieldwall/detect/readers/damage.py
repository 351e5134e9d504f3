"""What a hunt meets in a real sensor's directory besides good lines, and how it is told.

A file is read, read up to a cut (`Truncated`: a compressed stream that ends early; what came
before the cut counts), skipped (`NotTelemetry`: a CSV, a Zeek stats log, JSON without a
mapping), or not read at all (any other `ReaderError`, an unreadable file). Readers add
notes about a file (columns they could not map) with `note`; `FileStats` keeps them.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.detect.readers.base import (
    ReaderError,
    ReadStats,
    _is_binary,
    head_bytes,
    is_gzip,
    json_records,
)

# What reading a damaged compressed file raises: gzip's EOFError (stream ends early), zlib's
# error (corrupt deflate data), OSError (BadGzipFile, a CRC mismatch, pyarrow's "Truncated
# compressed stream").
DAMAGED = (EOFError, zlib.error, OSError)


class NotTelemetry(ReaderError):
    """A file that holds nothing a hunt reads; skipped with this note in a directory."""


class Truncated(ReaderError):
    """The file's stream ends early after `line`; the lines before it were read."""

    def __init__(self, path: object, line: int, why: object) -> None:
        super().__init__(f"{path}: compressed stream cut after line {line} ({why}); "
                         "the lines before it were read")
        self.line = line
        self.note = f"compressed stream cut after line {line}: {why}"


@dataclass
class FileStats(ReadStats):
    """A hunt's counters, with the readers' notes about the file being read."""

    notes: list[str] = field(default_factory=list)


def note(stats: ReadStats, text: str) -> None:
    """Tell the report something about the file being read (kept by `FileStats` only)."""
    if isinstance(stats, FileStats) and text not in stats.notes:
        stats.notes.append(text)


def records(path: Path, stats: ReadStats, cut: list[Truncated]) -> Iterator[tuple[int, Any]]:
    """`base.json_records`, ending at a damaged stream: the lines before it are yielded and
    the cut is left in `cut` for the reader to raise once it has delivered them."""
    last = 0
    try:
        for n, rec in json_records(path, stats):
            last = n
            yield n, rec
    except DAMAGED as exc:
        cut.append(Truncated(path, last, _why(exc)))


def readable_head(path: Path, n: int) -> bytes:
    """The first `n` bytes of a log (gunzipped), as far as a damaged stream goes."""
    try:
        return head_bytes(path, n)
    except DAMAGED:
        if not is_gzip(path):
            raise
    with open(path, "rb") as fh:
        raw = fh.read(1 << 20)
    head = zlib.decompressobj(31).decompress(raw, n)  # corrupt data still raises zlib.error
    if _is_binary(head):
        raise ReaderError(f"{path}: binary file, not a log")
    return head


class UntilCut(io.RawIOBase):
    """A gzip file read as far as its stream goes, ending at the last complete line before
    the damage; `lines` is then the number of lines read and `why` the damage."""

    def __init__(self, path: Path) -> None:
        self._gz = gzip.open(path, "rb")  # noqa: SIM115 - closed with this object
        self._ready = b""
        self._tail = b""
        self._done = False
        self.lines = 0
        self.why = ""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._ready and not self._done:
            try:
                chunk = self._gz.read1(1 << 16)  # read() would lose its block at the cut
                end = not chunk
            except DAMAGED as exc:
                self.why, chunk, end = _why(exc), b"", True
            data = self._tail + chunk
            if end:
                self._done = True
                keep = data if not self.why else data[:data.rfind(b"\n") + 1]
                self._ready, self._tail = keep, b""
            else:
                at = data.rfind(b"\n") + 1
                self._ready, self._tail = data[:at], data[at:]
            self.lines += self._ready.count(b"\n")
        n = min(len(b), len(self._ready))
        b[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def close(self) -> None:
        self._gz.close()
        super().close()


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
