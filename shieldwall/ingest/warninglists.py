"""MISP warning lists: known-benign values (public resolvers, cloud ranges, top sites, empty-file
hashes), so an imported indicator for 8.8.8.8 is flagged as MISP flags it, not alerted on.

The lists come from `pymispwarninglists` (its bundled MISP warning-lists data, CIDR lists
included), but not its search: `WarningLists(slow_search=True)` took 19 s to load and 0.35 s
per value (every list is scanned, hostname lists by a Python loop over ~1M entries), about ten
hours for a 100,000-indicator import. Shieldwall reads the same JSON and builds one index:

- `string` lists: one hash map value -> lists;
- `hostname` lists (and `.example.com` entries of string lists, which can mean nothing else):
  a second map, looked up for the host and each parent domain;
- `cidr` lists: elementary intervals (sorted integer starts, each with the lists covering it),
  one `bisect` per address;
- `substring` lists: a map per entry length, probed with a window per length;
- `regex` lists (phone numbers, role mailboxes): compiled, tried only for their kinds.

A list applies to a value only when its `matching_attributes` name a MISP type of the value's
kind, as in MISP: a hash list never flags a domain. The measured figures are in
`docs/ingest.md`.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from shieldwall.ingest import defang as d
from shieldwall.stix import values as canon

Hit = tuple[str, str]  # (warning-list name, why the value is on it)

# Our kinds -> the MISP attribute types a warning list names in `matching_attributes`.
_MISP_TYPES: dict[str, frozenset[str]] = {
    d.IPV4: frozenset({"ip-src", "ip-dst", "domain|ip", "ip-src|port", "ip-dst|port"}),
    d.DOMAIN: frozenset({"domain", "hostname", "domain|ip", "hostname|port"}),
    d.URL: frozenset({"url", "uri"}),
    d.EMAIL: frozenset({"email-src", "email-dst", "target-email", "whois-registrant-email",
                        "dns-soa-email", "email"}),
    d.MD5: frozenset({"md5", "filename|md5", "x509-fingerprint-md5"}),
    d.SHA1: frozenset({"sha1", "filename|sha1", "x509-fingerprint-sha1"}),
    d.SHA256: frozenset({"sha256", "filename|sha256", "x509-fingerprint-sha256"}),
    d.FILENAME: frozenset({"filename"}),
}
_MISP_TYPES[d.IPV6] = _MISP_TYPES[d.IPV4_CIDR] = _MISP_TYPES[d.IPV6_CIDR] = _MISP_TYPES[d.IPV4]


def _kinds_of(list_json: Mapping[str, Any]) -> frozenset[str]:
    attrs = list_json.get("matching_attributes")
    if not attrs:
        return frozenset(_MISP_TYPES)
    wanted = set(attrs)
    return frozenset(k for k, types in _MISP_TYPES.items() if types & wanted)


def _regex(entry: str) -> re.Pattern[str] | None:
    """MISP writes PCRE as `/body/flags`; only `i` matters here."""
    m = re.match(r"^/(.*)/([a-z]*)$", entry, re.S)
    body, flags = (m.group(1), m.group(2)) if m else (entry, "")
    try:
        return re.compile(body, re.I if "i" in flags else 0)
    except re.error:
        return None


def _add(table: dict[str, Any], key: str, idx: int) -> None:
    """Most values are on one list: store an int, grow to a tuple only when shared."""
    have = table.get(key)
    if have is None:
        table[key] = idx
    elif isinstance(have, int):
        if have != idx:
            table[key] = (have, idx)
    elif idx not in have:
        table[key] = (*have, idx)


def _merge(table: dict[str, Any], keys: Iterable[str], idx: int) -> None:
    """`_add` for a whole list: new keys go in by one C-level update (2.4M entries: 5 s -> 1 s)."""
    fresh = dict.fromkeys(keys, idx)
    shared = fresh.keys() & table.keys()
    for key in shared:
        del fresh[key]
        _add(table, key, idx)
    table.update(fresh)


_V4_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?$")


def _span(entry: str) -> tuple[int, int, int] | None:
    """(first, last, version) of a network; IPv4 parsed by hand (`ip_network` costs 50 µs)."""
    m = _V4_RE.match(entry)
    if m:
        octets = [int(x) for x in m.groups()[:4]]
        prefix = int(m.group(5)) if m.group(5) is not None else 32
        if max(octets) <= 255 and prefix <= 32:
            addr = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            host_bits = (1 << (32 - prefix)) - 1
            return addr & ~host_bits, addr | host_bits, 4
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    return int(net.network_address), int(net.broadcast_address), net.version


# IPv4 in the one spelling `ip_network` reads exactly so (no leading zeros, prefix 0-32).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_STRICT_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(3[0-2]|[12]?[0-9]))?\Z")


def _v4_span(value: str) -> tuple[int, int, int] | None:
    """`_span` for a value checked: IPv4 without `ipaddress` (1.0 µs against 3.1); None for
    anything else, which `ip_network` then reads (or refuses) as before."""
    m = _V4_STRICT_RE.match(value)
    if m is None:
        return None
    a, b, c, e, prefix = m.groups()
    addr = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(e)
    host_bits = (1 << (32 - int(prefix))) - 1 if prefix else 0
    return addr & ~host_bits, addr | host_bits, 4


def _ids(found: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if found is None:
        return ()
    return (found,) if isinstance(found, int) else found


@dataclass
class _Intervals:
    """Elementary intervals over one address family: `starts[i]..starts[i+1]-1` is covered by
    exactly the lists `covers[i]`."""

    starts: list[int]
    covers: list[tuple[int, ...]]

    @classmethod
    def build(cls, ranges: Iterable[tuple[int, int, int]]) -> _Intervals:
        events: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for start, end, idx in ranges:
            events[start].append((idx, 1))
            events[end + 1].append((idx, -1))
        active: dict[int, int] = defaultdict(int)
        starts: list[int] = []
        covers: list[tuple[int, ...]] = []
        for point in sorted(events):
            for idx, delta in events[point]:
                active[idx] += delta
                if active[idx] == 0:
                    del active[idx]
            cover = tuple(sorted(active))
            if covers and covers[-1] == cover:
                continue
            starts.append(point)
            covers.append(cover)
        return cls(starts, covers)

    def lookup(self, first: int, last: int) -> tuple[int, ...]:
        """The lists that cover every address from `first` to `last`."""
        i = bisect.bisect_right(self.starts, first) - 1
        if i < 0:
            return ()
        found = set(self.covers[i])
        while found and i + 1 < len(self.starts) and self.starts[i + 1] <= last:
            i += 1
            found &= set(self.covers[i])
        return tuple(found)


def _automaton(entries: list[tuple[str, int]]) -> Any:
    """An Aho-Corasick automaton over substring entries: each word's value is the word and
    its (rank, list) pairs, rank its place in `entries`, so hits keep one order."""
    import ahocorasick

    words: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for rank, (e, i) in enumerate(entries):
        words[e].append((rank, i))
    found = ahocorasick.Automaton()
    for word, ranked in words.items():
        found.add_word(word, (word, tuple(ranked)))
    found.make_automaton()
    return found


class WarningIndex:
    """All warning lists in one index; build once per process (see `default_index`)."""

    def __init__(self, lists: Iterable[Mapping[str, Any]]):
        self.names: list[str] = []
        self.kinds: list[frozenset[str]] = []
        self._exact: dict[str, Any] = {}
        self._hostname: dict[str, Any] = {}
        self._substring: dict[int, dict[str, Any]] = defaultdict(dict)
        self._regexes: list[tuple[int, re.Pattern[str]]] = []
        v4: list[tuple[int, int, int]] = []
        v6: list[tuple[int, int, int]] = []
        for wl in lists:
            idx = len(self.names)
            self.names.append(str(wl["name"]))
            self.kinds.append(_kinds_of(wl))
            kind = wl.get("type")
            entries = [e for e in wl.get("list") or () if isinstance(e, str) and e]
            if kind == "string":
                # `.google.com` on a string list can only mean "google.com and below".
                _merge(self._exact, (_entry(e) for e in entries if e[0] != "."), idx)
                _merge(self._hostname, (canon.domain(e[1:]) for e in entries if e[0] == "."),
                       idx)
            elif kind == "hostname":
                _merge(self._hostname, (canon.domain(e.strip(".")) for e in entries), idx)
            elif kind == "substring":
                for entry in entries:
                    _add(self._substring[len(entry)], entry.lower(), idx)
            elif kind == "regex":
                self._regexes += [(idx, rx) for rx in map(_regex, entries) if rx is not None]
            elif kind == "cidr":
                for entry in entries:
                    span = _span(canon.ip(entry.strip()))
                    if span is None:
                        _add(self._exact, _entry(entry), idx)
                    else:
                        (v4 if span[2] == 4 else v6).append((span[0], span[1], idx))
        # Per kind, only the substring entries of lists that apply to it: a URL meets 26
        # entries; a domain or an email the 4,941 disposable-mail domains (`domain|ip` is
        # among their types). One Aho-Corasick pass over the value finds them all (`_finders`).
        self._finders: dict[str, Any] = {}
        pairs = self._substring_pairs()
        for kind_ in _MISP_TYPES:
            self._index_substrings(kind_, [(e, i) for e, i in pairs if kind_ in self.kinds[i]])
        self._kind_regexes: dict[str, list[tuple[int, re.Pattern[str]]]] = {}
        self._parents: dict[str, Any] = {}
        self._v4 = _Intervals.build(v4)
        self._v6 = _Intervals.build(v6)

    # -------------------------------------------------------------------------- checking

    def _substring_pairs(self) -> list[tuple[str, int]]:
        """Every (substring entry, list) pair, in one order for every kind."""
        return [(e, i) for table in self._substring.values() for e, ids in table.items()
                for i in _ids(ids)]

    def _index_substrings(self, kind: str, entries: list[tuple[str, int]]) -> None:
        """The automaton of `kind`'s substring entries (None when it has none): 9 ms for the
        4,941 of a domain; a search costs ~0.9 µs a value, a probe of the value's 4-character
        windows in a dict of the entries' first four, as before, ~7 µs."""
        self._finders[kind] = _automaton(entries) if entries else None

    # A check costs ~10 µs, most of it in Python around a few table lookups that miss: the
    # helpers below build a reason only for a hit, and `check` dedupes only what can repeat.

    def _hits(self, ids: Iterable[int], kind: str, why: str) -> list[Hit]:
        return [(self.names[i], why) for i in ids if kind in self.kinds[i]]

    def _listed(self, key: str, kind: str) -> list[Hit]:
        found = self._exact.get(key)
        return [] if found is None else self._hits(_ids(found), kind, f"{key} is listed")

    def _host_hits(self, host: str, kind: str) -> list[Hit]:
        """The host and each parent domain (`a.b.c`, `b.c`, `c`), on the hostname lists.
        Parents recur (`com`, a customer's domain): their answers are kept (`_parents`)."""
        hits: list[Hit] = []
        get, parents = self._hostname.get, self._parents
        at = 0
        while True:
            if at:
                suffix = host[at:]
                found = parents.get(suffix, parents)
                if found is parents:
                    if len(parents) >= 65_536:
                        parents.clear()
                    found = parents[suffix] = get(suffix)
            else:
                suffix = host
                found = get(suffix)
            if found is not None:
                why = f"{host} is {suffix}" if at == 0 else f"{host} is under {suffix}"
                hits += self._hits(_ids(found), kind, why)
            at = host.find(".", at) + 1
            if not at:
                return hits

    def _substring_hits(self, value: str, kind: str) -> list[Hit]:
        finder = self._finders.get(kind)
        if finder is None:
            return []
        found = {match for _, match in finder.iter(value)}  # an entry found twice counts once
        if not found:
            return []
        ranked = sorted((rank, i, e) for e, pairs in found for rank, i in pairs)
        return [(self.names[i], f"{value} contains {e}") for _, i, e in ranked]

    def _regexes_of(self, kind: str) -> list[tuple[int, re.Pattern[str]]]:
        """The regex entries of lists that apply to `kind` (most kinds: none of the 34)."""
        found = self._kind_regexes.get(kind)
        if found is None:
            found = [(idx, rx) for idx, rx in self._regexes if kind in self.kinds[idx]]
            self._kind_regexes[kind] = found
        return found

    def check(self, value: str, kind: str | None = None) -> list[Hit]:
        """The warning lists `value` is on, as (list name, reason); empty when none.

        `kind` is one of `defang.KINDS`; when None the value is auto-typed (and refanged).
        """
        if kind is None:
            typed = d.classify(value)
            if typed is None:
                return []
            kind, value = typed
        form = _FORMS.get(kind)
        if form is not None:  # the entries' form (`_entry`), however the value is written
            value = form(value.strip())
        hits: list[Hit] = []
        if kind in (d.IPV4, d.IPV6, d.IPV4_CIDR, d.IPV6_CIDR):
            span = _v4_span(value)
            if span is None:
                try:
                    net = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    return []
                span = (int(net.network_address), int(net.broadcast_address), net.version)
            first, last, version = span
            table = self._v4 if version == 4 else self._v6
            found = table.lookup(first, last)
            if found:
                what = "is in" if first == last else "lies within"
                hits += self._hits(found, kind, f"{value} {what} a network on the list")
            hits += self._listed(value, kind)
        elif kind == d.URL:
            hits += self._listed(value, kind)
            host = _url_host(value)
            if host:
                hits += self._listed(host, kind)
                hits += self._host_hits(host, kind)
            hits += self._substring_hits(value.lower(), kind)
        else:
            hits += self._listed(value, kind)
            if kind == d.DOMAIN:
                hits += self._host_hits(value, kind)
            if kind in (d.DOMAIN, d.EMAIL):
                hits += self._substring_hits(value, kind)
        for idx, rx in self._regexes_of(kind):
            if rx.search(value):
                hits.append((self.names[idx], f"{value} matches {rx.pattern}"))
        return _unique(hits) if len(hits) > 1 else hits

    def check_indicator(self, indicator: Mapping[str, Any]) -> list[Hit]:
        """Warning-list hits for the values compared in a STIX pattern (`=` and `ISSUBSET`).

        An indicator is flagged when any value it names is known-benign: `[ipv4-addr:value =
        '8.8.8.8' OR domain-name:value = 'evil.example']` still deserves an analyst's look.
        """
        if indicator.get("pattern_type", "stix") != "stix":
            return []
        compared = pattern_values(str(indicator.get("pattern") or ""))
        if len(compared) == 1:  # the common case: `check` has deduped its hits
            return self.check(compared[0][1], compared[0][0])
        hits: list[Hit] = []
        for kind, value in compared:
            hits += self.check(value, kind)
        return _unique(hits)


def _unique(hits: list[Hit]) -> list[Hit]:
    return list(dict.fromkeys(hits))


# `scheme://host[:port]` followed by a path, query, fragment or nothing, the host a plain
# name or IPv4 address: the common URL, whose `urlsplit(url).hostname` is the host lower-
# cased. Read by this regex, ~3 µs less a URL than `urlsplit`; anything else by `urlsplit`.
_PLAIN_URL_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([A-Za-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|\Z)")


def _url_host(url: str) -> str:
    """The canonical host of `url` (`urlsplit(url).hostname`, by `stix.values.host`); ""."""
    m = _PLAIN_URL_HOST.match(url)
    try:
        if m is not None:
            return canon.host(m.group(1).lower())
        return canon.host(urlsplit(url).hostname or "")
    except ValueError:
        return ""


# Values looked up and list entries meet in the canonical form of `stix.values` (a hash in
# lower case, a name as its lower-case A-label without the root's dot, IPv6 in RFC 5952 form,
# an IPv4-mapped address as IPv4, a URL's scheme and host folded, an email's domain folded).
_FORMS = {d.IPV4: canon.ip, d.IPV6: canon.ip, d.IPV4_CIDR: canon.ip, d.IPV6_CIDR: canon.ip,
          d.DOMAIN: canon.domain, d.EMAIL: canon.email, d.URL: canon.url,
          d.MD5: canon.hash_value, d.SHA1: canon.hash_value, d.SHA256: canon.hash_value}


def _entry(entry: str) -> str:
    """A string-list entry (kind unknown: any list may hold addresses, names, digests) in
    canonical form; the common ASCII name or digest costs one `lower()`."""
    if entry.isascii() and ":" not in entry and "@" not in entry and entry[-1] != ".":
        return entry.lower()
    return canon.guess(entry)


_COMPARISON_RE = re.compile(
    r"([a-z0-9-]+):([A-Za-z0-9_.'-]+)\s*(=|ISSUBSET)\s*'((?:[^'\\]|\\.)*)'"
)
_UNESCAPE_RE = re.compile(r"\\(.)")
_PATH_KINDS: dict[tuple[str, str], str | None] = {
    ("ipv4-addr", "value"): d.IPV4,
    ("ipv6-addr", "value"): d.IPV6,
    ("domain-name", "value"): d.DOMAIN,
    ("url", "value"): d.URL,
    ("email-addr", "value"): d.EMAIL,
    ("file", "name"): d.FILENAME,
}
_HASH_KINDS = {"md5": d.MD5, "sha-1": d.SHA1, "sha1": d.SHA1, "sha-256": d.SHA256,
               "sha256": d.SHA256}


# One comparison with `=` and a value without escapes, the whole pattern: read as
# `_COMPARISON_RE` reads it, by one anchored match (3.7 -> ~1 µs a domain, 7 -> 1 a hash).
_SIMPLE_RE = re.compile(r"\[([a-z0-9-]+):([A-Za-z0-9_.'-]+)\s*=\s*'([^'\\]*)'\]\Z")
_NOTHING = object()  # a comparison `pattern_values` does not check


@lru_cache(maxsize=1024)  # bounded: paths come from the feed
def _simple_kind(obj_type: str, path: str) -> str | object | None:
    """The kind `pattern_values` gives an `=` comparison of `obj_type:path`: None to
    auto-type, `_NOTHING` when it skips it."""
    kind = _PATH_KINDS.get((obj_type, path))
    if kind is None and ".hashes." in f".{path}":
        kind = _HASH_KINDS.get(path.rsplit(".", 1)[-1].strip("'").lower())
    if kind is None:
        return None if path.endswith("_ref.value") else _NOTHING
    return kind


def pattern_values(pattern: str) -> list[tuple[str | None, str]]:
    """(kind, value) for each simple comparison in a STIX pattern; kind None means auto-type
    (e.g. `network-traffic:dst_ref.value`, which may be an address or a name)."""
    simple = _SIMPLE_RE.match(pattern)
    if simple is not None:  # `[type:path = 'value']`, most indicators: one match, no scan
        kind = _simple_kind(simple.group(1), simple.group(2))
        return [] if kind is _NOTHING else [(kind, simple.group(3))]  # type: ignore[list-item]
    out: list[tuple[str | None, str]] = []
    for obj_type, path, op, raw in _COMPARISON_RE.findall(pattern):
        value = _UNESCAPE_RE.sub(r"\1", raw) if "\\" in raw else raw
        if op == "ISSUBSET":
            if obj_type in ("ipv4-addr", "ipv6-addr"):
                out.append((d.IPV4_CIDR if obj_type == "ipv4-addr" else d.IPV6_CIDR, value))
            continue
        kind = _PATH_KINDS.get((obj_type, path))
        if kind is None and ".hashes." in f".{path}":
            kind = _HASH_KINDS.get(path.rsplit(".", 1)[-1].strip("'").lower())
        if kind is None and path.endswith("_ref.value"):
            out.append((None, value))
            continue
        if kind is not None:
            out.append((kind, value))
    return out


def _lists_dir() -> Path:
    return d.misp_lists_dir()


def load_lists(
    directory: Path | None = None, only: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Every `list.json` under the pymispwarninglists data (or `directory`); `only` names the
    list folders to load (`public-dns-v4`, `amazon-aws`, ...) when not all are wanted."""
    root = directory or _lists_dir()
    paths = (sorted(root.glob("*/list.json")) if only is None
             else [root / name / "list.json" for name in only])
    return [orjson.loads(p.read_bytes()) for p in paths]


class CorruptIndex(Exception):
    """The cached index file is damaged (`warninglist_cache` deletes it; it is rebuilt)."""


@cache
def default_index() -> WarningIndex:
    """The index over the bundled lists, kept for the process: mapped from the on-disk cache
    (`warninglist_cache`: built by the first process that needs it, once per installed set
    of lists), so a command pays milliseconds for it, not the ~5 s of building it."""
    from shieldwall.ingest.warninglist_cache import open_index

    return open_index()


def check(value: str, kind: str | None = None) -> list[Hit]:
    try:
        return default_index().check(value, kind)
    except CorruptIndex:  # a block of the cache file failed its CRC: rebuilt, asked again
        default_index.cache_clear()
        return default_index().check(value, kind)


def check_indicator(indicator: Mapping[str, Any]) -> list[Hit]:
    try:
        return default_index().check_indicator(indicator)
    except CorruptIndex:
        default_index.cache_clear()
        return default_index().check_indicator(indicator)
