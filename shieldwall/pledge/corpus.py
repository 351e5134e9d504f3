"""Breached and common-password corpora, asked the way k-anonymity range services are asked.

A lookup never sends a hash anywhere: the auditor takes the first five hex digits of a
digest (20 bits, about a million buckets), asks its `RangeSource` for every digest in
that bucket, and compares the rest locally. The local `PrefixIndex` answers the same
question from memory, so a member can swap in a remote range service (a Pwned
Passwords-style API, or the alliance's own) without changing the audit and without a
full hash ever leaving the node.

The index is one contiguous bytes blob of digests sorted by value plus a table of
bucket offsets: 16 bytes a digest for NTLM, 20 for SHA-1, no per-entry Python object.
Ten million NTLM digests take 160 MB and a bucket lookup is two array reads and a slice.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from shieldwall.errors import ShieldwallError

PREFIX_HEX = 5
PREFIX_BITS = PREFIX_HEX * 4
BUCKETS = 1 << PREFIX_BITS

WIDTH = {"ntlm": 16, "sha1": 20}


class CorpusError(ShieldwallError):
    """A corpus file that cannot be read as sorted hex digests."""


def ntlm(password: str) -> bytes:
    """NTLM is MD4 over UTF-16LE; OpenSSL 3 hides MD4, so passlib's implementation does it."""
    from passlib.hash import nthash

    return bytes.fromhex(nthash.hash(password))


def sha1(password: str) -> bytes:
    return hashlib.sha1(password.encode("utf-8")).digest()


DIGEST = {"ntlm": ntlm, "sha1": sha1}


def prefix_of(digest: bytes) -> int:
    """The bucket number: the first 20 bits, i.e. the first five hex digits."""
    return int.from_bytes(digest[:3], "big") >> 4


class RangeSource(Protocol):
    """Anything that answers "which digests start with these five hex digits?".

    Implementations return full digests of the bucket; the caller compares locally.
    A remote service implements only this method and sees only the prefix.
    """

    def range(self, algorithm: str, prefix: int) -> frozenset[bytes]: ...


class PrefixIndex:
    """An in-memory range source over sorted digests, one blob per algorithm."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._offsets: dict[str, array] = {}
        self.sizes: dict[str, int] = {}
        self.label = "empty"

    def add_sorted(self, algorithm: str, digests: Iterable[bytes]) -> None:
        """Index digests that arrive sorted (as Pwned Passwords downloads are); one pass,
        no sort, so a ten-million-entry file never exists as Python objects."""
        width = WIDTH[algorithm]
        blob = bytearray()
        counts = array("I", bytes(4 * (BUCKETS + 1)))
        last = b""
        n = 0
        for d in digests:
            if len(d) != width:
                raise CorpusError(f"{algorithm} digest of {len(d)} bytes, expected {width}")
            if d < last:
                raise CorpusError(f"{algorithm} corpus is not sorted at entry {n + 1}")
            if d == last:
                continue
            last = d
            blob += d
            counts[prefix_of(d) + 1] += 1
            n += 1
        for i in range(1, BUCKETS + 1):
            counts[i] += counts[i - 1]
        self._blobs[algorithm] = bytes(blob)
        self._offsets[algorithm] = counts
        self.sizes[algorithm] = n

    def add_passwords(self, passwords: Iterable[str], algorithms: Iterable[str] = WIDTH) -> None:
        words = list(dict.fromkeys(passwords))
        for algorithm in algorithms:
            fn = DIGEST[algorithm]
            self.add_sorted(algorithm, sorted(fn(w) for w in words))

    def add_hex_file(self, algorithm: str, path: Path) -> None:
        """`HEX` or `HEX:COUNT` lines sorted by hash (the Pwned Passwords download format)."""
        self.add_sorted(algorithm, _hex_lines(path, WIDTH[algorithm]))

    def range(self, algorithm: str, prefix: int) -> frozenset[bytes]:
        blob = self._blobs.get(algorithm)
        if blob is None:
            return frozenset()
        off = self._offsets[algorithm]
        width = WIDTH[algorithm]
        lo, hi = off[prefix] * width, off[prefix + 1] * width
        return frozenset(blob[i:i + width] for i in range(lo, hi, width))

    def contains(self, algorithm: str, digest: bytes) -> bool:
        """The local fast path: the same bucket read, without building a set."""
        blob = self._blobs.get(algorithm)
        if blob is None:
            return False
        p = prefix_of(digest)
        off = self._offsets[algorithm]
        width = WIDTH[algorithm]
        lo, hi = off[p] * width, off[p + 1] * width
        while lo < hi:
            if blob[lo:lo + width] == digest:
                return True
            lo += width
        return False

    def algorithms(self) -> list[str]:
        return sorted(self._blobs)


def _hex_lines(path: Path, width: int) -> Iterator[bytes]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CorpusError(f"{path}: {exc.strerror}") from None
    with fh:
        for lineno, raw in enumerate(fh, 1):
            text = raw.split(b":", 1)[0].strip()
            if not text:
                continue
            try:
                d = bytes.fromhex(text.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                raise CorpusError(f"{path}:{lineno}: not a hex digest") from None
            if len(d) != width:
                raise CorpusError(f"{path}:{lineno}: {len(d)}-byte digest, expected {width}")
            yield d


class BreachCorpus:
    """Membership over any range source, one range query per distinct bucket.

    Holds the ordered common-password list too: slow salted hashes cannot be looked up,
    only tried, most common first.
    """

    def __init__(self, source: RangeSource, common: list[str], label: str) -> None:
        self.source = source
        self.common = common
        self.label = label

    def found(self, algorithm: str, digests: Iterable[bytes]) -> set[bytes]:
        """Which of `digests` the corpus holds."""
        fast = getattr(self.source, "contains", None)
        if fast is not None:
            return {d for d in digests if fast(algorithm, d)}
        by_bucket: dict[int, set[bytes]] = {}
        for d in digests:
            by_bucket.setdefault(prefix_of(d), set()).add(d)
        hits: set[bytes] = set()
        for prefix, wanted in by_bucket.items():
            hits |= wanted & self.source.range(algorithm, prefix)
        return hits


def common_passwords() -> list[str]:
    """zxcvbn's list of the 30,000 most frequent passwords from real breaches, most common
    first (the list its strength estimator uses; MIT licensed, read from the package)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return list(FREQUENCY_LISTS["passwords"])


@lru_cache(maxsize=1)
def bundled_corpus() -> BreachCorpus:
    """The offline corpus every node has; built once a process (about two seconds)."""
    common = common_passwords()
    index = PrefixIndex()
    index.add_passwords(common)
    index.label = f"zxcvbn common passwords ({len(common):,})"
    return BreachCorpus(index, common, index.label)
