"""The active set a sensor export is made of, read through the store's `Access`.

Active: the latest version an audience may read (the `Access` TAXII applies to that member),
not revoked, at or below `tlp_max`, a STIX pattern, valid now (`valid_from` passed,
`valid_until` not), and not on a benign warning list (store tag `warninglist`, as the hunt
leaves them out). Each indicator's sensor form (`forms.form_of`) is computed once per
version.

`refresh` is incremental: it reads only what the store's change cursor (`seq`) says arrived
since, then re-reads those ids through the `Access` (a new version the audience may not
read, or a revocation, takes the old one out), and notices validity windows opening and
closing. Versions deleted through TAXII leave no change behind; a full `load` sees them.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from shieldwall.outputs.sensors.forms import Form, NoForm, form_of
from shieldwall.outputs.sensors.text import plain, safe_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import now_us, parse_ts
from shieldwall.store import Access, Query, Store

WARNINGLIST_TAG = "warninglist"  # the tag ingest writes (detect.index reads the same)
# Outputs are assembled from per-bucket texts: a change re-renders its bucket only (1,000
# changes among 1,000,000 indicators touch ~1,000 buckets of ~15 indicators each).
BUCKETS = 65_536
_PAGE = 20_000
_TLPS = {int(t): t for t in TLP}  # ~0.1 us against ~1 us for TLP(n)
_IDS = 500


@dataclass(slots=True)
class Entry:
    """One readable, non-revoked indicator version, active or not yet/no longer valid."""

    id: str
    name: str
    tlp: TLP
    modified: str
    from_us: int
    until_us: int | None
    form: Form | None
    reason: str = ""  # why there is no form
    bucket: int = 0
    label: str = ""  # the name made plain for any sensor's file (`text.plain`)

    def active(self, now: int) -> bool:
        return self.from_us <= now and (self.until_us is None or now < self.until_us)


def bucket_of(indicator_id: str) -> int:
    return zlib.crc32(indicator_id.encode()) % BUCKETS


@dataclass
class ActiveSet:
    """Active indicators of one audience; `changed_buckets` says what to re-render."""

    store: Store
    access: Access | None = None
    tlp_max: TLP | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    cursor: int = 0
    warninglisted: frozenset[str] = frozenset()
    changed_buckets: set[int] = field(default_factory=set)
    members: dict[int, set[str]] = field(default_factory=dict)
    _bounds: list[tuple[int, str]] = field(default_factory=list)  # (time, id) heap

    def load(self, now: int | None = None) -> None:
        """Read the whole active set (the first export, or after a TAXII delete)."""
        now = now_us() if now is None else now
        self.entries.clear()
        self.members = {}
        self._bounds = []
        self.cursor = self.store.newest_seq()
        self.warninglisted = frozenset(i for i, _ in self.store.tagged(WARNINGLIST_TAG))
        q = Query(types=["indicator"], access=self.access, tlp_max=self.tlp_max,
                  include_revoked=False)
        after: int | None = None
        while True:
            q.after_seq, q.limit = after, _PAGE
            rows, more = self.store.read_rows(q)
            for r in rows:
                self._take(r.id, r.json, r.tlp, now=now)
            if not more or not rows:
                break
            after = rows[-1].seq
        heapq.heapify(self._bounds)
        self.changed_buckets = set(range(BUCKETS))
        self._settle(now)

    def refresh(self, now: int | None = None) -> bool:
        """Apply what changed since the last read; True when the active set changed."""
        now = now_us() if now is None else now
        newest = self.store.newest_seq()
        listed = frozenset(i for i, _ in self.store.tagged(WARNINGLIST_TAG))
        for iid in listed ^ self.warninglisted:  # put on or taken off a warning list
            e = self.entries.get(iid)
            if e is not None:
                self.changed_buckets.add(e.bucket)
        self.warninglisted = listed
        touched: set[str] = set()
        if newest > self.cursor:
            q = Query(types=["indicator"], versions="all", after_seq=self.cursor)
            after: int | None = self.cursor
            while True:
                q.after_seq, q.limit = after, _PAGE
                rows, more = self.store.read_rows(q)
                touched.update(r.id for r in rows)
                if not more or not rows:
                    break
                after = rows[-1].seq
            self.cursor = newest
        ids = sorted(touched)
        for i in range(0, len(ids), _IDS):
            chunk = ids[i:i + _IDS]
            seen: set[str] = set()
            # No `types`: the ids are indicators' (a STIX id names its type), and with a
            # type SQLite walks the type's index (every indicator, ~0.7 s a chunk at a
            # million) instead of looking the ids up
            q = Query(ids=chunk, access=self.access, tlp_max=self.tlp_max,
                      include_revoked=False)
            for r in self.store.read_rows(q)[0]:
                seen.add(r.id)
                self._take(r.id, r.json, r.tlp, push=True)
            for iid in set(chunk) - seen:
                self._drop(iid)
        return self._settle(now)

    def active(self, now: int | None = None, bucket: int | None = None) -> Iterator[Entry]:
        """Active entries (of one bucket), in no particular order."""
        now = now_us() if now is None else now
        ids = self.entries if bucket is None else self.members.get(bucket, ())
        for iid in ids:
            e = self.entries[iid]
            if e.active(now) and iid not in self.warninglisted:
                yield e

    def active_in(self, bucket: int, now: int) -> list[Entry]:
        """The active entries of one bucket in id order (the export renders them so, and
        hands out new sids in that order: a set's order would follow the process's string
        hashing, and two exports of one store would number the same rules differently)."""
        entries, listed = self.entries, self.warninglisted
        out = []
        for iid in sorted(self.members.get(bucket, ())):
            e = entries[iid]
            if e.from_us <= now and (e.until_us is None or now < e.until_us) and \
                    iid not in listed:
                out.append(e)
        return out

    def due(self, now: int) -> bool:
        """Does a validity window open or close by `now`?"""
        return bool(self._bounds) and self._bounds[0][0] <= now

    # ---- internals -----------------------------------------------------------------

    def _take(self, iid: str, text: str, tlp: int, push: bool = False,
              now: int | None = None) -> None:
        """Hold one version. `now` (a full load): validity bounds already past are not kept
        (nothing will change at them), and every bucket is rendered anyway."""
        try:
            obj = orjson.loads(text)
            pattern = obj.get("pattern")
            if obj.get("pattern_type", "stix") != "stix" or not isinstance(pattern, str):
                self._drop(iid)
                return
            from_us = parse_ts(obj.get("valid_from") or "1970-01-01T00:00:00Z")
            until = obj.get("valid_until")
            until_us = parse_ts(until) if until else None
        except (orjson.JSONDecodeError, ValueError, AttributeError):
            self._drop(iid)
            return
        modified = str(obj.get("modified", ""))
        old = self.entries.get(iid)
        if old is not None and old.modified == modified and old.tlp == tlp:
            return
        try:
            if not safe_id(iid):
                raise NoForm("not a STIX indicator id")
            form, reason = form_of(pattern), ""
        except NoForm as exc:
            form, reason = None, str(exc)
        name = str(obj.get("name") or "")
        e = Entry(iid, name, _TLPS[tlp], modified, from_us, until_us, form, reason,
                  bucket_of(iid), plain(name, 200))
        self.entries[iid] = e
        members = self.members.get(e.bucket)
        if members is None:
            self.members[e.bucket] = {iid}
        else:
            members.add(iid)
        if now is None:
            self.changed_buckets.add(e.bucket)
        for t in (from_us, until_us):
            if t is not None and (now is None or t > now):
                if push:
                    heapq.heappush(self._bounds, (t, iid))
                else:
                    self._bounds.append((t, iid))

    def _drop(self, iid: str) -> None:
        e = self.entries.pop(iid, None)
        if e is not None:
            self.members[e.bucket].discard(iid)
            self.changed_buckets.add(e.bucket)

    def _settle(self, now: int) -> bool:
        """Validity windows that opened or closed by `now` mark their buckets; True when
        any bucket needs rendering."""
        while self._bounds and self._bounds[0][0] <= now:
            _, iid = heapq.heappop(self._bounds)
            e = self.entries.get(iid)
            if e is not None:
                self.changed_buckets.add(e.bucket)
        return bool(self.changed_buckets)
