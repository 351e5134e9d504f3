"""Follow growing logs like `tail -F`: new complete lines are matched as they arrive.

Rotation is survived: when the path's inode changes or the file shrinks, the rest of the old
file is drained and the new file is read from its start. Each poll's new lines go through the
same readers as a hunt (Zeek TSV lines are read with the file's own header); line numbers in
explanations are those of the followed file.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.hunt import Hunter
from shieldwall.detect.readers import LINE, Observations, ReadStats, detect_format, read


@dataclass
class _Followed:
    path: Path
    fh: IO[bytes] | None = None
    inode: int | None = None
    lines: int = 0  # complete lines consumed from the current file
    header: bytes = b""
    rest: bytes = b""
    fmt: str | None = None


class Watcher:
    def __init__(self, hunter: Hunter, path: Path, *, from_start: bool = True) -> None:
        self.hunter = hunter
        self.f = _Followed(path)
        self.from_start = from_start

    def _open(self) -> bool:
        f = self.f
        try:
            st = os.stat(f.path)
            fh = open(f.path, "rb")  # noqa: SIM115 - kept open while followed
        except FileNotFoundError:
            return False
        f.fh, f.inode, f.lines, f.header, f.rest, f.fmt = fh, st.st_ino, 0, b"", b"", None
        if not self.from_start:
            fh.seek(0, os.SEEK_END)
            self.from_start = True  # only the first file is joined at its end
        return True

    def poll(self) -> int:
        """Read what is new (draining a rotated file first); returns hits found."""
        f = self.f
        if f.fh is None and not self._open():
            return 0
        hits = self._drain()
        try:
            st = os.stat(f.path)
            rotated = st.st_ino != f.inode or st.st_size < (f.fh.tell() if f.fh else 0)
        except FileNotFoundError:
            rotated = False
        if rotated:
            hits += self._drain()
            if f.fh:
                f.fh.close()
            f.fh = None
            if self._open():
                hits += self._drain()
        return hits

    def _drain(self) -> int:
        f = self.f
        assert f.fh is not None
        data = f.rest + f.fh.read()
        cut = data.rfind(b"\n") + 1
        f.rest = data[cut:]
        chunk = data[:cut]
        if not chunk:
            return 0
        first_line = f.lines
        f.lines += chunk.count(b"\n")
        # The chunk is read from a temporary file named like the followed one (`dns.*.log`):
        # a Zeek JSON log without `_path` is known by its name.
        named = {"prefix": f.path.name.split(".")[0] + ".", "suffix": ".log", "delete": False}
        if f.fmt is None:
            with tempfile.NamedTemporaryFile(**named) as tmp:  # type: ignore[call-overload]
                tmp.write(chunk[:65536])
            try:
                f.fmt = detect_format(Path(tmp.name))
            finally:
                os.unlink(tmp.name)
        if f.fmt == "zeek-tsv":
            lines = chunk.split(b"\n")
            if first_line == 0:
                f.header = b"".join(ln + b"\n" for ln in lines if ln.startswith(b"#fields")
                                    or ln.startswith(b"#types") or ln.startswith(b"#path")
                                    or ln.startswith(b"#separator")
                                    or ln.startswith(b"#set_separator")
                                    or ln.startswith(b"#empty_field")
                                    or ln.startswith(b"#unset_field"))
            body = chunk
            offset = first_line - f.header.count(b"\n")
            payload = f.header + body if first_line > 0 else chunk
            if first_line == 0:
                offset = 0
        else:
            payload, offset = chunk, first_line
        with tempfile.NamedTemporaryFile(**named) as tmp:  # type: ignore[call-overload]
            tmp.write(payload)
        hits = 0
        # The chunk is read from a temporary file: its corrupt lines are counted in a stats of
        # their own and reported under the followed file's name and line numbers.
        local = ReadStats()
        try:
            for obs in read(Path(tmp.name), local, f.fmt):
                table = obs.table
                if offset:
                    idx = table.column_names.index(LINE)
                    table = table.set_column(idx, LINE, pc.add(table.column(LINE),
                                                               pa.scalar(offset, pa.int64())))
                hits += self.hunter.feed(Observations(table, str(f.path), obs.kind,
                                                      obs.originals, obs.event))
        finally:
            os.unlink(tmp.name)
            self._merge(local, offset)
        return hits

    def _merge(self, local: ReadStats, offset: int) -> None:
        stats = self.hunter.stats
        stats.events += local.events
        stats.files = max(stats.files, 1)
        for bad in local.bad:
            stats.skip(str(self.f.path), bad.line + offset, bad.reason)
        stats.bad_count += local.bad_count - len(local.bad)

    def run(self, *, interval: float = 1.0, until: Callable[[], bool] | None = None,
            on_poll: Callable[[int], None] | None = None) -> None:
        while until is None or not until():
            hits = self.poll()
            if on_poll is not None:
                on_poll(hits)
            time.sleep(interval)
