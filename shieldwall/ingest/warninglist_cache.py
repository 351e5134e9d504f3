"""The warning-list index on disk: built once per installed set of lists, opened in a millisecond.

Building `WarningIndex` over the 119 MISP lists (2.3M values) takes ~5 s and ~600 MB; an
import of ten objects should not pay that. The first process that needs the index builds it
and writes it to a file; every later one maps that file and reads only the pages its lookups
touch (a 10-object import reads a few of its ~120 MB).

Where: `$XDG_CACHE_HOME/shieldwall/` (default `~/.cache/shieldwall/`), a directory of the
user's own, created with mode 0700. A directory or file that another user owns or may write
is not used (whoever writes it decides which indicators are called benign): the index is
then built in memory, as before. The file is `warninglists-<key>.idx`; the key digests the
`pymispwarninglists` version, each list file's name, size and modification time, this
format's version, the byte order, and the size and modification time of the modules that
decide what the index holds, so an upgrade of either rebuilds it. Clear it with
`rm -f ~/.cache/shieldwall/warninglists-*`.

Format (native byte order, part of the key): a header (magic, format, metadata length and
CRC-32, file length); JSON metadata (list names and kinds, the distinct sets of lists a value
is on, where each section lies, a CRC-32 per 64 KiB block of the body); then, from the next
64 KiB boundary, the body:

- `exact`, `hostname`: open-addressing hash tables (CRC-32 of the UTF-8 key, linear probing,
  at most half full, no wrapping: the slots run on past the last home slot by the longest
  probe): slots of (hash, entry number + 1); entries of (key offset, key length, id set);
  the keys, end to end; and a filter, a bitmap of the keys' hashes' top bits (checked whole
  when the file is opened), which answers most lookups of absent values by itself;
- `v4`: the elementary intervals of the IPv4 CIDR lists, starts as u64, id sets as u32;
- `v6`, `regexes`, `substrings` (each entry with its list): JSON, parsed on first use (the
  substring entries indexed then for the kinds met).

No pickle and no code: a truncated file fails the length check, a damaged one the CRC of the
metadata or of the block a lookup reads (each block is checked on its first read, so a small
import checks a few blocks, not the whole file); either is deleted and rebuilt. Builders hold an
exclusive lock (concurrent imports build once; the others wait and open the result), write a
temporary file in the same directory and rename it into place, so no reader ever maps a
partial file. No fsync: a file lost in a crash fails its checks and is rebuilt.
"""

from __future__ import annotations

import array
import hashlib
import logging
import mmap
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from shieldwall.ingest import defang as d
from shieldwall.ingest import warninglists as wl
from shieldwall.ingest.warninglists import CorruptIndex

log = logging.getLogger(__name__)

FORMAT = 4
_MAGIC = b"SWWLIDX\0"
_HEADER = struct.Struct("<8sIIIQ")  # magic, format, metadata length, its CRC-32, file length
_SHIFT = 16  # 64 KiB blocks, each with its CRC-32
_BLOCK = 1 << _SHIFT

# Times the index was built in this process (tests read it: a warm cache builds nothing).
builds = 0


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/shieldwall`, else `~/.cache/shieldwall` (a relative XDG path is
    ignored, as the XDG specification says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "shieldwall"


def _sources() -> list[Path]:
    """The modules whose code decides what the index holds."""
    here = Path(__file__)
    paths = [here, Path(wl.__file__), Path(d.__file__)]
    values = here.parent.parent / "stix" / "values.py"
    return [*paths, values] if values.exists() else paths


def _package_version(lists_dir: Path) -> str:
    """The installed pymispwarninglists version, from its dist-info folder (no import: ~3 s)."""
    try:
        site = d.misp_lists_dir().parents[2].parent
        return " ".join(sorted(p.name for p in site.glob("pymispwarninglists-*.dist-info")))
    except (ModuleNotFoundError, OSError, IndexError):
        return ""


def cache_key(lists_dir: Path) -> str:
    """Digest of everything the index is built from; any change gives a new file."""
    h = hashlib.sha256(f"{FORMAT} {sys.byteorder} {_package_version(lists_dir)}\n".encode())
    for src in _sources():
        st = src.stat()
        h.update(f"{src.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    h.update(f"{lists_dir.resolve()}\n".encode())
    for path in sorted(lists_dir.glob("*/list.json")):
        st = path.stat()
        h.update(f"{path.parent.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _file_name(key: str) -> str:
    """The cache file of one key; `open_index` removes the other keys' files."""
    return f"warninglists-{key[:24]}.idx"


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def open_index(lists_dir: Path | None = None, directory: Path | None = None) -> wl.WarningIndex:
    """The index over every list under `lists_dir` (default: the bundled ones), read from the
    cache in `directory` (default `cache_dir()`), built and written there when absent, stale
    or damaged. Where no private cache directory can be had, it is built in memory."""
    global builds
    lists_dir = lists_dir or wl._lists_dir()
    directory = directory or cache_dir()
    key = cache_key(lists_dir)
    path = directory / _file_name(key)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        usable = _private(directory.stat())
    except OSError:
        usable = False
    if not usable:
        log.warning("warning lists: %s is not a private directory of this user; "
                    "building the index in memory", directory)
        builds += 1
        return wl.WarningIndex(wl.load_lists(lists_dir))
    index = _open(path, key)
    if index is not None:
        return index
    with _locked(directory / "warninglists.lock"):
        index = _open(path, key)  # built by another process while this one waited
        if index is not None:
            return index
        builds += 1
        built = wl.WarningIndex(wl.load_lists(lists_dir))
        try:
            _write(built, path, key)
        except OSError as exc:
            log.warning("warning lists: cannot write the index cache %s (%s)", path, exc)
            return built
        for old in directory.glob("warninglists-*.idx"):
            if old != path:
                old.unlink(missing_ok=True)
    return _open(path, key) or built


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (where there is no `flock`, builders may build twice; the
    rename still leaves one whole file)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Under the lock, any temporary file is a dead builder's.
        for tmp in path.parent.glob(".warninglists-*.tmp"):
            tmp.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------- writing

def _write(index: wl.WarningIndex, path: Path, key: str) -> None:
    idsets: dict[tuple[int, ...], int] = {}

    def idset(found: Any) -> int:
        return idsets.setdefault(wl._ids(found), len(idsets))

    body = bytearray()
    sections: dict[str, list[int]] = {}

    def add(name: str, data: bytes | bytearray) -> None:
        body.extend(b"\0" * (-len(body) % 8))
        sections[name] = [len(body), len(data)]
        body.extend(data)

    maps: dict[str, dict[str, int]] = {}
    for name, table in (("exact", index._exact), ("hostname", index._hostname)):
        size, probes, slots, entries, keys, (bits, shift) = _hash_table(table, idset)
        add(f"{name}.slots", slots)
        add(f"{name}.entries", entries)
        add(f"{name}.keys", keys)
        add(f"{name}.filter", bits)
        maps[name] = {"slots": size, "probes": probes, "filter_shift": shift}
    add("v4.starts", array.array("Q", index._v4.starts).tobytes())
    add("v4.covers", array.array("I", map(idset, index._v4.covers)).tobytes())
    add("v6", orjson.dumps({"starts": [format(s, "x") for s in index._v6.starts],
                            "covers": [idset(c) for c in index._v6.covers]}))
    add("regexes", orjson.dumps([[i, rx.pattern, rx.flags] for i, rx in index._regexes]))
    add("substrings", orjson.dumps(index._substring_pairs()))
    view = memoryview(body)
    meta = orjson.dumps({
        "key": key, "names": index.names, "kinds": [sorted(k) for k in index.kinds],
        "idsets": list(idsets), "sections": sections, "maps": maps,
        "crcs": [zlib.crc32(view[at:at + _BLOCK]) for at in range(0, len(body), _BLOCK)],
    })
    start = -(-(_HEADER.size + len(meta)) // _BLOCK) * _BLOCK
    header = _HEADER.pack(_MAGIC, FORMAT, len(meta), zlib.crc32(meta), start + len(body))
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".warninglists-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
            fh.write(meta)
            fh.write(b"\0" * (start - _HEADER.size - len(meta)))
            fh.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _hash_table(table: dict[str, Any], idset: Callable[[Any], int]
                ) -> tuple[int, int, bytes, bytes, bytes, tuple[bytes, int]]:
    """(home slots, longest probe, slots, entries, keys, filter) of an open-addressing table
    at most half full. Placed in numpy, not by probing in a Python loop (2.3M keys: ~1 s, not
    ~4): entries sorted by home slot take their home slot or the one after the previous
    entry's, which is where linear probing puts them.

    The filter: one bit per 2^shift hash values, set for every key's CRC-32 (at least 8 bits
    a key: ~1 in 9 absent keys passes). Most values checked are on no list, and a lookup
    that the filter answers reads one byte of a few MB instead of probing slots and entries
    across ~100 MB (100,000 checks: ~20% less CPU)."""
    import numpy as np

    n = len(table)
    size = 1 << max(4, (2 * n - 1).bit_length())
    keys = [k.encode("utf-8", "surrogatepass") for k in table]
    hashes = np.fromiter(map(zlib.crc32, keys), dtype=np.uint32, count=n)
    lengths = np.fromiter(map(len, keys), dtype=np.uint32, count=n)
    sets = np.fromiter(map(idset, table.values()), dtype=np.uint32, count=n)
    home = (hashes & np.uint32(size - 1)).astype(np.int64)
    order = np.argsort(home, kind="stable")
    rank = np.arange(n, dtype=np.int64)
    place = np.maximum.accumulate(home[order] - rank) + rank if n else rank
    probes = int((place - home[order]).max()) + 1 if n else 1
    slots = np.zeros((size + probes, 2), dtype=np.uint32)
    slots[place, 0] = hashes[order]
    slots[place, 1] = order + 1
    entries = np.empty((n, 3), dtype=np.uint32)
    entries[:, 0] = np.cumsum(lengths, dtype=np.uint64) - lengths
    entries[:, 1] = lengths
    entries[:, 2] = sets
    width = max(16, (8 * n - 1).bit_length())
    bits = np.zeros(1 << width, dtype=bool)
    bits[hashes >> np.uint32(32 - width)] = True
    return (size, probes, slots.tobytes(), entries.tobytes(), b"".join(keys),
            (np.packbits(bits, bitorder="little").tobytes(), 32 - width))


# ------------------------------------------------------------------------------- reading

class _File:
    """The mapped file; checks each body block's CRC-32 on its first read."""

    def __init__(self, path: Path, inode: int, mm: mmap.mmap, start: int,
                 meta: dict[str, Any]) -> None:
        self.path = path
        self.inode = inode
        self.mm = mm
        self.view = memoryview(mm)
        self.start = start
        self.crcs: list[int] = meta["crcs"]
        self.idsets: list[tuple[int, ...]] = [tuple(s) for s in meta["idsets"]]
        self.sections: dict[str, list[int]] = meta["sections"]
        self.ok: set[int] = set()  # blocks (of the body) whose CRC has been checked

    def verify(self, at: int, length: int) -> None:
        """Check the blocks holding body bytes [at, at + length)."""
        for block in range(at >> _SHIFT, ((at + max(length, 1) - 1) >> _SHIFT) + 1):
            if block in self.ok:
                continue
            lo = self.start + (block << _SHIFT)
            if block >= len(self.crcs) or zlib.crc32(self.view[lo:lo + _BLOCK]) != self.crcs[block]:
                self.discard()
                raise CorruptIndex(f"{self.path}: block {block} is damaged")
            self.ok.add(block)

    def section(self, name: str) -> memoryview:
        at, length = self.sections[name]
        self.verify(at, length)
        return self.view[self.start + at:self.start + at + length]

    def discard(self) -> None:
        """Delete the damaged file, unless another process has already replaced it."""
        _unlink_if(self.path, self.inode)


class _FileMap:
    """A read-only `dict.get` over one hash table of the file (values as `wl._ids` reads)."""

    def __init__(self, file: _File, name: str, spec: dict[str, int]) -> None:
        self._file = file
        self._mm = file.mm
        self._slots_at, slots_len = file.sections[f"{name}.slots"]
        self._entries_at, entries_len = file.sections[f"{name}.entries"]
        self._keys_at = file.sections[f"{name}.keys"][0]
        self._slots = file.view[file.start + self._slots_at:
                                file.start + self._slots_at + slots_len].cast("I")
        self._entries = file.view[file.start + self._entries_at:
                                  file.start + self._entries_at + entries_len].cast("I")
        self._mask = spec["slots"] - 1
        self._probes = spec["probes"]
        self._filter = file.section(f"{name}.filter")  # a few MB, checked whole: ~3 ms
        self._shift = spec["filter_shift"]

    def get(self, key: str, default: Any = None) -> Any:
        kb = key.encode("utf-8", "surrogatepass")
        h = zlib.crc32(kb)
        bit = h >> self._shift
        if not self._filter[bit >> 3] & (1 << (bit & 7)):
            return default  # no key has this hash
        file, ok, slots = self._file, self._file.ok, self._slots
        i = h & self._mask
        try:
            for _ in range(self._probes):
                at = self._slots_at + 8 * i
                if at >> _SHIFT not in ok:
                    file.verify(at, 8)
                entry = slots[2 * i + 1]
                if not entry:
                    return default
                if slots[2 * i] == h:
                    e = 3 * (entry - 1)
                    at = self._entries_at + 4 * e
                    if at >> _SHIFT not in ok or (at + 11) >> _SHIFT not in ok:
                        file.verify(at, 12)
                    offset, length = self._entries[e], self._entries[e + 1]
                    if length == len(kb):
                        at = self._keys_at + offset
                        if at >> _SHIFT not in ok or (at + length - 1) >> _SHIFT not in ok:
                            file.verify(at, length)
                        at += file.start
                        if self._mm[at:at + length] == kb:
                            return file.idsets[self._entries[e + 2]]
                i += 1
        except IndexError as exc:
            file.discard()
            raise CorruptIndex(f"{file.path}: {exc}") from None
        return default


class _Covers:
    """`covers[i]` of `_Intervals`, read from the file's id-set numbers."""

    def __init__(self, numbers: memoryview, idsets: list[tuple[int, ...]]) -> None:
        self._numbers = numbers
        self._idsets = idsets

    def __getitem__(self, i: int) -> tuple[int, ...]:
        return self._idsets[self._numbers[i]]

    def __len__(self) -> int:
        return len(self._numbers)


class _CachedIndex(wl.WarningIndex):
    """`WarningIndex` over the mapped file: the same `check`, the tables read from disk; the
    small, rarely needed parts (IPv6 intervals, regexes, substrings) parsed on first use."""

    def __init__(self, file: _File, meta: dict[str, Any]) -> None:  # no super(): nothing to build
        self._file = file
        self.names = list(meta["names"])
        self.kinds = [frozenset(k) for k in meta["kinds"]]
        self._exact = _FileMap(file, "exact", meta["maps"]["exact"])  # type: ignore[assignment]
        self._hostname = _FileMap(file, "hostname", meta["maps"]["hostname"])  # type: ignore[assignment]
        self._kind_regexes = {}
        self._parents = {}
        self._finders = {}
        self._v4 = wl._Intervals(file.section("v4.starts").cast("Q"),  # type: ignore[arg-type]
                                 _Covers(file.section("v4.covers").cast("I"), file.idsets))  # type: ignore[arg-type]

    def _substring_pairs(self) -> list[tuple[str, int]]:
        return self._pairs

    def _substring_hits(self, value: str, kind: str) -> list[wl.Hit]:
        if kind not in self._finders:  # indexed for the kinds met (a domain's: ~9 ms)
            self._index_substrings(kind, [(e, i) for e, i in self._pairs
                                          if kind in self.kinds[i]])
        return super()._substring_hits(value, kind)

    def __getattr__(self, name: str) -> Any:
        """Parse a lazy section on first use (only called for attributes not yet set)."""
        file = self.__dict__.get("_file")
        if file is None:
            raise AttributeError(name)
        if name == "_v6":
            v6 = orjson.loads(file.section("v6"))
            value: Any = wl._Intervals([int(s, 16) for s in v6["starts"]],
                                       [file.idsets[c] for c in v6["covers"]])
        elif name == "_regexes":
            import re

            value = [(i, re.compile(p, f)) for i, p, f in orjson.loads(file.section("regexes"))]
        elif name == "_pairs":
            value = [(e, i) for e, i in orjson.loads(file.section("substrings"))]
        else:
            raise AttributeError(name)
        setattr(self, name, value)
        return value


def _open(path: Path, key: str) -> _CachedIndex | None:
    """The index in `path` if it is whole and built from `key`; None (damaged: deleted)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("warning lists: cannot open %s (%s)", path, exc)
        return None
    try:
        st = os.fstat(fd)
        if not _private(st):
            log.warning("warning lists: %s is writable by others; not used", path)
            return None
        if st.st_size < _HEADER.size:
            log.warning("warning lists: rebuilding the index cache (%s is truncated)", path)
            _unlink_if(path, st.st_ino)
            return None
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    try:
        magic, fmt, meta_len, meta_crc, total = _HEADER.unpack_from(mm, 0)
        meta_bytes = mm[_HEADER.size:_HEADER.size + meta_len]
        if (magic != _MAGIC or fmt != FORMAT or total != len(mm)
                or len(meta_bytes) != meta_len or zlib.crc32(meta_bytes) != meta_crc):
            raise CorruptIndex(f"{path}: header or metadata damaged")
        meta = orjson.loads(meta_bytes)
        if meta.get("key") != key:
            return None
        start = -(-(_HEADER.size + meta_len) // _BLOCK) * _BLOCK
        return _CachedIndex(_File(path, st.st_ino, mm, start, meta), meta)
    except (CorruptIndex, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("warning lists: rebuilding the index cache (%s)", exc)
        _unlink_if(path, st.st_ino)
        return None


def _unlink_if(path: Path, inode: int) -> None:
    """Delete `path` if it is still the file read (not one another process put in its place)."""
    try:
        if os.stat(path).st_ino == inode:
            path.unlink()
    except OSError:
        pass
