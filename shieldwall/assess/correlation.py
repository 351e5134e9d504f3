"""Campaigns by correlation: incidents and sightings across members, linked by what they share.

Two objects are linked when they share a value of one kind (the same indicator, IP,
domain, URL, file hash, certificate or ATT&CK technique) and were first seen within
`window_days` of each other. Linked objects form groups (union-find); a group that spans
at least `min_members` members is a candidate campaign, emitted as a STIX `campaign` with
`related-to` relationships that carry the evidence of each link (`x_shieldwall_evidence`).

Correlation must not explode the way MISP's does, where one public resolver links every
event to every other. So a value is *capped* and never links anything when

- it is warning-listed (an indicator the store tagged `warninglist`, or a value the
  caller names benign), or
- more than `max_objects` objects carry it (per kind configurable): the moment a value
  crosses the cap, the links it made are withdrawn and only the groups it touched are
  regrouped from their remaining links.

Capped values are counted and reported (`Correlator.capped`), so an analyst sees what was
left out and why. The result does not depend on arrival order: a link exists iff its value
is under the cap and the two times are within the window, both symmetric conditions.

Incremental: each new object costs a few indexed reads and writes against the value ->
objects index (`corr_values`), at most `max_objects` candidates per value, and a relabel
of the smaller group on union (quick-find, union by size: O(log n) relabels per object
over its lifetime). Nothing is ever rebuilt from scratch; `bench/correlation_bench.py`
measures the cost per object on a store of 1,000,000 indicators.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from shieldwall.assess.incidents import (
    FIRST_SEEN,
    RELATED_REFS,
    SECTOR,
    SIGHTING_REFS,
    TECHNIQUES,
    score_of,
)
from shieldwall.assess.severity import (
    DEFAULT_VERSION,
    CampaignSeverity,
    MemberIncident,
    score_campaign,
    score_incident,
)
from shieldwall.assess.tables import (
    corr_groups,
    corr_links,
    corr_objects,
    corr_value_stats,
)
from shieldwall.errors import ShieldwallError
from shieldwall.stix import values as canon
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import (
    TLP,
    audience_property,
    narrowest_audience,
    tlp_marking_ref,
)
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts
from shieldwall.store import Provenance, Query, Store
from shieldwall.store.audience import Marking, row_marking

DAY_US = 86_400 * 1_000_000
CORRELATED_TYPES = ("incident", "sighting")
EVIDENCE = "x_shieldwall_evidence"
CURSOR_KEY = "assess.correlation.seq"

# `[type:path = 'value']` comparisons of a STIX pattern that name infrastructure.
_PATTERN_RE = re.compile(
    r"(ipv4-addr|ipv6-addr|domain-name|url|email-addr|file|x509-certificate):"
    r"([A-Za-z0-9_.'\-]+)\s*=\s*'((?:[^'\\]|\\.)*)'")
_SCO_KIND = {"ipv4-addr": "ip", "ipv6-addr": "ip", "domain-name": "domain", "url": "url",
             "email-addr": "email"}
_FORM = {"ip": canon.ip, "domain": canon.domain, "url": canon.url, "email": canon.email,
         "file-hash": canon.hash_value}


class CorrelationError(ShieldwallError):
    """A correlation setting out of range; the message says which."""


@dataclass(frozen=True)
class CorrelationConfig:
    """How correlation links objects. `caps` overrides `max_objects` per kind (kinds:
    indicator, ip, domain, url, email, file-hash, certificate, technique)."""

    window_days: float = 30.0
    max_objects: int = 50
    caps: Mapping[str, int] = field(default_factory=dict)
    min_members: int = 2
    benign: frozenset[tuple[str, str]] = frozenset()  # (kind, value) never used

    def __post_init__(self) -> None:
        object.__setattr__(self, "benign", frozenset(
            (kind, _FORM[kind](value) if kind in _FORM else value) for kind, value in self.benign))
        if self.max_objects < 2 or any(v < 2 for v in self.caps.values()):
            raise CorrelationError("a cap below 2 objects would link nothing; use >= 2")
        if self.window_days <= 0:
            raise CorrelationError("window_days must be positive")

    def cap(self, kind: str) -> int:
        return int(self.caps.get(kind, self.max_objects))

    @property
    def window_us(self) -> int:
        return int(self.window_days * DAY_US)


@dataclass(frozen=True)
class Observed:
    """What correlation needs of one incident or sighting."""

    obj_id: str
    obj_type: str
    member: str
    ts_us: int
    values: frozenset[tuple[str, str]]
    benign: frozenset[tuple[str, str]] = frozenset()  # values of warning-listed indicators


@dataclass
class AddResult:
    new_links: int = 0
    capped_now: list[tuple[str, str]] = field(default_factory=list)
    withdrawn_links: int = 0


@dataclass
class Group:
    grp: str
    objects: list[tuple[str, str, str, int]]  # (id, type, member, ts_us)
    links: list[tuple[str, str, str, str]]  # (a, b, kind, value)

    @property
    def members(self) -> list[str]:
        return sorted({o[2] for o in self.objects})

    def ids(self) -> frozenset[str]:
        return frozenset(o[0] for o in self.objects)


@dataclass(frozen=True)
class Capped:
    kind: str
    value: str
    objects: int
    reason: str  # "warninglist" or "over-common"


# ---- extracting values ----------------------------------------------------------------


def pattern_values(pattern: str) -> set[tuple[str, str]]:
    """Infrastructure named by equality comparisons in a STIX pattern."""
    out: set[tuple[str, str]] = set()
    for sco_type, path, raw in _PATTERN_RE.findall(pattern or ""):
        value = raw.replace("\\'", "'").replace("\\\\", "\\")
        out |= _sco_values(sco_type, path, value)
    return out


def _sco_values(sco_type: str, path: str, value: str) -> set[tuple[str, str]]:
    """(kind, value) with the value in canonical form (`stix.values`): two indicators or
    observations that write one address, name or digest differently share it."""
    if sco_type in _SCO_KIND and path == "value":
        kind = _SCO_KIND[sco_type]
        return {(kind, _FORM[kind](value))}
    if sco_type in ("file", "x509-certificate") and path.startswith("hashes."):
        kind = "file-hash" if sco_type == "file" else "certificate"
        return {(kind, canon.hash_value(value))}
    if sco_type == "x509-certificate" and path == "serial_number":
        return {("certificate", "serial:" + value.lower())}
    return set()


def sco_values(sco: Mapping[str, Any]) -> set[tuple[str, str]]:
    t = str(sco.get("type"))
    out: set[tuple[str, str]] = set()
    if "value" in sco:
        out |= _sco_values(t, "value", str(sco["value"]))
    for digest in (sco.get("hashes") or {}).values():
        out |= _sco_values(t, "hashes.x", str(digest))
    if t == "x509-certificate" and sco.get("serial_number"):
        out |= _sco_values(t, "serial_number", str(sco["serial_number"]))
    return out


class _Resolver:
    """Objects an incident or sighting refers to, from the same batch or the store,
    fetched with one query per level (not one per object)."""

    def __init__(self, store: Store, batch: Sequence[Mapping[str, Any]]) -> None:
        self.store = store
        self.known: dict[str, Mapping[str, Any]] = {o["id"]: o for o in batch if "id" in o}

    def fetch(self, ids: Iterable[str]) -> None:
        missing = sorted({i for i in ids if i not in self.known})
        for i in range(0, len(missing), 2_000):
            for row in self.store.query(Query(ids=missing[i:i + 2_000])).rows:
                self.known[row.id] = row.obj()

    def get(self, oid: str) -> Mapping[str, Any] | None:
        return self.known.get(oid)


def _refs_of(obj: Mapping[str, Any]) -> list[str]:
    if obj["type"] == "sighting":
        return [obj.get("sighting_of_ref", ""), *(obj.get("observed_data_refs") or [])]
    # An incident carries what its own sightings saw, so it links through their indicators.
    return [*(obj.get(RELATED_REFS) or []), *(obj.get(SIGHTING_REFS) or [])]


def _time_of(obj: Mapping[str, Any]) -> int:
    for key in ("first_seen", FIRST_SEEN, "created"):
        if obj.get(key):
            try:
                return parse_ts(obj[key])
            except ValueError:
                continue
    return 0


def observe(objs: Sequence[Mapping[str, Any]], resolver: _Resolver,
            member_of: Callable[[Mapping[str, Any]], str],
            warninglisted: frozenset[str] | set[str] = frozenset()) -> list[Observed]:
    """Values of each incident and sighting among `objs` (other objects only resolve).
    A warning-listed indicator's own values count as warning-listed too."""
    targets = [o for o in objs if o.get("type") in CORRELATED_TYPES]
    resolver.fetch(r for o in targets for r in _refs_of(o))
    second = [r for o in targets for ref in _refs_of(o)
              for r in ((resolver.get(ref) or {}).get("object_refs") or [])]
    resolver.fetch(second)
    out = []
    for o in targets:
        values: set[tuple[str, str]] = set()
        benign: set[tuple[str, str]] = set()
        for ref in _refs_of(o):
            target = resolver.get(ref)
            if ref.startswith("indicator--"):
                values.add(("indicator", ref))
                named = pattern_values(str((target or {}).get("pattern", "")))
                values |= named
                if ref in warninglisted:
                    benign |= named | {("indicator", ref)}
            elif target is not None and target.get("type") == "sighting":
                seen = str(target.get("sighting_of_ref", ""))
                if seen.startswith("indicator--"):
                    values.add(("indicator", seen))
                    if seen in warninglisted:
                        benign.add(("indicator", seen))
            elif target is not None and target.get("type") == "observed-data":
                for sco_id in target.get("object_refs") or []:
                    sco = resolver.get(sco_id)
                    if sco is not None:
                        values |= sco_values(sco)
        values |= {("technique", t) for t in o.get(TECHNIQUES) or []}
        out.append(Observed(o["id"], o["type"], member_of(o), _time_of(o), frozenset(values),
                            frozenset(benign)))
    return out


def observed_in(store: Store, objs: Sequence[Mapping[str, Any]]) -> list[Observed]:
    """What correlation reads of each incident and sighting among `objs`, for any room
    that must read them the same way (attribution takes its evidence from here)."""
    return observe(objs, _Resolver(store, objs), member_of=lambda o: str(
        o.get("created_by_ref") or ""))


# ---- the correlator ------------------------------------------------------------------


class Correlator:
    """Incremental correlation over the tables of migration 0006."""

    def __init__(self, store: Store, config: CorrelationConfig | None = None) -> None:
        self.store = store
        self.config = config or CorrelationConfig()
        self.warninglisted = {i for i, _ in store.tagged("warninglist")}

    # -- adding

    def add(self, obj: Mapping[str, Any], member: str,
            companions: Sequence[Mapping[str, Any]] = ()) -> AddResult:
        """Correlate one new incident or sighting (with any objects it refers to)."""
        return self.add_many([obj, *companions], member=member)

    def add_many(self, objs: Sequence[Mapping[str, Any]], *, member: str | None = None,
                 members: Mapping[str, str] | None = None, batch: int = 1_000) -> AddResult:
        """Correlate each incident and sighting in `objs`, one after the other.

        The member of an object is `members[id]`, else `member`, else its
        `created_by_ref`. Objects share a transaction per `batch`; the work per object is
        the same as `add`.
        """
        def member_of(o: Mapping[str, Any]) -> str:
            if members and o["id"] in members:
                return members[o["id"]]
            return member or str(o.get("created_by_ref") or "unknown")

        total = AddResult()
        resolver = _Resolver(self.store, objs)
        for i in range(0, len(objs), batch):
            chunk = objs[i:i + batch]
            observed = observe(chunk, resolver, member_of,
                               self.warninglisted)
            with self.store.transaction() as conn:
                for ob in observed:
                    self._add(conn, ob, total)
        return total

    def update_from_store(self, *, limit: int | None = None) -> AddResult:
        """Correlate the incidents and sightings stored since the last run (a kv cursor);
        the member of each is the one that delivered it (`Provenance.source`)."""
        after = int(self.store.kv_get(CURSOR_KEY) or 0)
        rows = list(self.store.iter_query(Query(types=list(CORRELATED_TYPES), after_seq=after,
                                                limit=limit)))
        if not rows:
            return AddResult()
        result = self.add_many([r.obj() for r in rows], members={r.id: r.source for r in rows})
        self.store.kv_set(CURSOR_KEY, str(rows[-1].seq))
        return result


    def _q(self, sql: str) -> str:
        """Driver SQL with this dialect's placeholder: statements built once as text cost
        ~30 us against ~300 us for a SQLAlchemy expression (compile and cache key), and
        an object at the cap runs a dozen of them."""
        return sql if self.store.dialect == "sqlite" else sql.replace("?", "%s")

    def _add(self, conn: Connection, ob: Observed, result: AddResult) -> None:
        q, run = self._q, conn.exec_driver_sql
        known = run(q("SELECT 1 FROM corr_objects WHERE obj_id = ?"), (ob.obj_id,)).first()
        if known is None:
            run(q("INSERT INTO corr_objects (obj_id, obj_type, member, ts_us, grp) "
                  "VALUES (?, ?, ?, ?, ?)"),
                (ob.obj_id, ob.obj_type, ob.member, ob.ts_us, ob.obj_id))
            run(q("INSERT INTO corr_groups (grp, size) VALUES (?, 1)"), (ob.obj_id,))
            indexed: set[tuple[str, str]] = set()
        else:  # a new version: only values it did not have before
            indexed = {(k, v) for k, v in run(
                q("SELECT kind, value FROM corr_values WHERE obj_id = ?"), (ob.obj_id,))}
        window = self.config.window_us
        partners: set[str] = set()
        for kind, value in sorted(ob.values - indexed):
            stat = run(q("SELECT n, capped FROM corr_value_stats WHERE kind = ? AND value = ?"),
                       (kind, value)).first()
            n = (stat[0] if stat else 0) + 1
            capped = stat[1] if stat else None
            if capped is None and ((kind, value) in self.config.benign
                                   or (kind, value) in ob.benign):
                capped = "warninglist"
            elif capped is None and n > self.config.cap(kind):
                capped = "over-common"
            if capped is not None and (stat is None or stat[1] is None):
                result.capped_now.append((kind, value))
                result.withdrawn_links += self._withdraw(conn, kind, value)
            others = [] if capped is not None else run(
                q("SELECT obj_id, ts_us FROM corr_values WHERE kind = ? AND value = ?"),
                (kind, value)).all()
            run(q("INSERT INTO corr_values (kind, value, obj_id, ts_us) VALUES (?, ?, ?, ?)"),
                (kind, value, ob.obj_id, ob.ts_us))
            if stat is None:
                run(q("INSERT INTO corr_value_stats (kind, value, n, capped) "
                      "VALUES (?, ?, ?, ?)"), (kind, value, n, capped))
            else:
                run(q("UPDATE corr_value_stats SET n = ?, capped = ? "
                      "WHERE kind = ? AND value = ?"), (n, capped, kind, value))
            near = [o for o, ts in others if o != ob.obj_id and abs(ts - ob.ts_us) <= window]
            if near:
                run(q("INSERT INTO corr_links (a, b, kind, value) VALUES (?, ?, ?, ?)"),
                    [(*sorted((o, ob.obj_id)), kind, value) for o in near])
                result.new_links += len(near)
                partners.update(near)
        if partners:
            self._union(conn, ob.obj_id, partners)

    def _union(self, conn: Connection, obj_id: str, partners: set[str]) -> None:
        """Merge the groups of `obj_id` and its partners into the largest (ties: the
        greater label, so any arrival order ends with the same partition)."""
        q, run = self._q, conn.exec_driver_sql
        ids = sorted(partners | {obj_id})
        marks = ", ".join("?" * len(ids))
        labels = {g for (g,) in run(q(f"SELECT DISTINCT grp FROM corr_objects "
                                      f"WHERE obj_id IN ({marks})"), tuple(ids))}
        if len(labels) < 2:
            return
        gm = ", ".join("?" * len(labels))
        sizes = dict(run(q(f"SELECT grp, size FROM corr_groups WHERE grp IN ({gm})"),
                         tuple(sorted(labels))).all())
        big = max(labels, key=lambda g: (sizes[g], g))
        rest = tuple(sorted(labels - {big}))
        rm = ", ".join("?" * len(rest))
        run(q(f"UPDATE corr_objects SET grp = ? WHERE grp IN ({rm})"), (big, *rest))
        run(q("UPDATE corr_groups SET size = ? WHERE grp = ?"),
            (sum(sizes.values()), big))
        run(q(f"DELETE FROM corr_groups WHERE grp IN ({rm})"), rest)

    def _withdraw(self, conn: Connection, kind: str, value: str) -> int:
        """Drop the links a now over-common value made; regroup only the groups it touched."""
        lk, o = corr_links.c, corr_objects.c
        ends = conn.execute(select(lk.a, lk.b).where(lk.kind == kind, lk.value == value)).all()
        if not ends:
            return 0
        conn.execute(delete(corr_links).where(lk.kind == kind, lk.value == value))
        touched = {x for pair in ends for x in pair}
        groups = set(conn.execute(select(o.grp).where(o.obj_id.in_(sorted(touched))))
                     .scalars())
        objs = list(conn.execute(select(o.obj_id).where(o.grp.in_(sorted(groups)))).scalars())
        parent = {x: x for x in objs}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in conn.execute(select(lk.a, lk.b).where(lk.a.in_(objs))).all():
            if b in parent:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        comps: dict[str, list[str]] = {}
        for x in objs:
            comps.setdefault(find(x), []).append(x)
        conn.execute(delete(corr_groups).where(corr_groups.c.grp.in_(sorted(groups))))
        for label, xs in comps.items():
            conn.execute(update(corr_objects).where(o.obj_id.in_(xs)).values(grp=label))
            conn.execute(insert(corr_groups).values(grp=label, size=len(xs)))
        return len(ends)

    # -- reading

    def groups(self, *, min_size: int = 2, min_members: int | None = None) -> list[Group]:
        """Linked groups, largest first; `min_members` defaults to the config's."""
        need = self.config.min_members if min_members is None else min_members
        o, lk = corr_objects.c, corr_links.c
        out = []
        with self.store.engine.connect() as conn:
            labels = list(conn.execute(
                select(corr_groups.c.grp).where(corr_groups.c.size >= min_size)
                .order_by(corr_groups.c.size.desc(), corr_groups.c.grp)).scalars())
            for grp in labels:
                objs = [tuple(r) for r in conn.execute(
                    select(o.obj_id, o.obj_type, o.member, o.ts_us).where(o.grp == grp)
                    .order_by(o.ts_us, o.obj_id))]
                if len({x[2] for x in objs}) < need:
                    continue
                ids = [x[0] for x in objs]
                links = []
                for i in range(0, len(ids), 2_000):
                    links += [tuple(r) for r in conn.execute(
                        select(lk.a, lk.b, lk.kind, lk.value).where(lk.a.in_(ids[i:i + 2_000]))
                        .order_by(lk.a, lk.b, lk.kind, lk.value))]
                out.append(Group(grp, objs, links))  # type: ignore[arg-type]
        return out

    def group_of(self, obj_id: str) -> str | None:
        with self.store.engine.connect() as conn:
            return conn.execute(select(corr_objects.c.grp).where(
                corr_objects.c.obj_id == obj_id)).scalar()

    def capped(self, limit: int = 100) -> list[Capped]:
        """Values left out of correlation, most common first, with the reason."""
        v = corr_value_stats.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(v.kind, v.value, v.n, v.capped)
                                .where(v.capped.is_not(None))
                                .order_by(v.n.desc(), v.kind, v.value).limit(limit)).all()
        return [Capped(*r) for r in rows]

    def stats(self) -> dict[str, int]:
        with self.store.engine.connect() as conn:
            def count(t: Any, *where: Any) -> int:
                return int(conn.execute(select(func.count()).select_from(t).where(*where))
                           .scalar() or 0)
            return {
                "objects": count(corr_objects), "values": count(corr_value_stats),
                "links": count(corr_links), "capped": count(
                    corr_value_stats, corr_value_stats.c.capped.is_not(None)),
                "groups_linked": count(corr_groups, corr_groups.c.size >= 2),
            }


# ---- candidate campaigns as STIX ------------------------------------------------------


def _evidence(group: Group) -> dict[tuple[str, str], list[dict[str, str]]]:
    by_pair: dict[tuple[str, str], list[dict[str, str]]] = {}
    for a, b, kind, value in group.links:
        by_pair.setdefault((a, b), []).append({"kind": kind, "value": value})
    return by_pair


def campaign_severity(store: Store, group: Group, sectors: Mapping[str, str] | None = None,
                      version: str = DEFAULT_VERSION) -> CampaignSeverity:
    """`severity.score_campaign` over the group: each incident's stored score (else an
    all-imputed score, flagged as such by the severity module), each member's sector."""
    rows = {r.id: r.obj() for r in store.query(Query(ids=sorted(group.ids()))).rows}
    sectors = dict(sectors or {})
    for oid, _t, member, _ts in group.objects:
        sector = (rows.get(oid) or {}).get(SECTOR)
        if sector and member not in sectors:
            sectors[member] = sector
    default = score_incident({}, version).score
    items = []
    for oid, _t, member, ts in group.objects:
        obj = rows.get(oid) or {}
        score = score_of(obj, version) if obj.get("type") == "incident" else None
        items.append(MemberIncident(member, sectors.get(member, ""),
                                    default if score is None else score, format_ts(ts)))
    return score_campaign(items, version)


def _input_markings(store: Store, ids: Iterable[str]) -> dict[str, list[Marking]]:
    """Each grouped object's (level, audience, deliverer), with those of the indicator a
    sighting is of: the shared values on a link may be the indicator's own."""
    rows = {r.id: r for r in store.query(Query(ids=sorted(ids))).rows}
    of = {oid: r.obj().get("sighting_of_ref") for oid, r in rows.items()}
    refs = {v for v in of.values() if isinstance(v, str)}
    indicators = {r.id: r for r in store.query(Query(ids=sorted(refs))).rows} if refs else {}
    out: dict[str, list[Marking]] = {}
    for oid, row in rows.items():
        out[oid] = [row_marking(row)]
        ind = indicators.get(of[oid])  # type: ignore[arg-type]
        if ind is not None:
            out[oid].append(row_marking(ind))
    return out


def _marked(obj: dict[str, Any], level: TLP, audience: tuple[str, ...] | None,
            creator: str) -> dict[str, Any]:
    obj["object_marking_refs"] = [tlp_marking_ref(level)]
    obj.update(audience_property(audience, creator))
    return obj


def campaign_objects(store: Store, group: Group, *, created_by_ref: str,
                     sectors: Mapping[str, str] | None = None, tlp: TLP = TLP.AMBER,
                     member: str = "") -> list[dict[str, Any]]:
    """A candidate `campaign` for the group and `related-to` relationships: one per linked
    pair with the shared values as evidence, one from each object to the campaign.

    Each is marked no wider than what it repeats (`narrowest_audience`): the campaign and
    its membership links by every grouped object, an evidence link by its two ends. `tlp`
    is the floor; `member` (the publishing node's member) stays in any audience."""
    sev = campaign_severity(store, group, sectors)
    cid = deterministic_id("campaign", f"shieldwall-correlation:{group.grp}")
    ts = format_ts(now_us())
    inputs = _input_markings(store, group.ids())
    level, audience = narrowest_audience(
        (m for ms in inputs.values() for m in ms), tlp)
    marking = [tlp_marking_ref(level)]
    first, last = group.objects[0][3], max(o[3] for o in group.objects)
    evidence = _evidence(group)
    kinds = sorted({e["kind"] for ev in evidence.values() for e in ev})
    campaign: dict[str, Any] = {
        "type": "campaign", "spec_version": "2.1", "id": cid, "created": ts, "modified": ts,
        "created_by_ref": created_by_ref,
        "name": f"Candidate campaign: {len(group.objects)} incidents and sightings across "
                f"{len(group.members)} members",
        "description": "Correlated by shared " + ", ".join(kinds) + ". A candidate for the "
                       "coordination cell to confirm, not an established campaign.",
        "first_seen": format_ts(first), "last_seen": format_ts(last),
        "object_marking_refs": marking,
        "x_shieldwall_candidate": True,
        "x_shieldwall_members": group.members,
        "x_shieldwall_object_refs": [o[0] for o in group.objects],
        "x_shieldwall_severity": sev.as_json(),
    }
    _marked(campaign, level, audience, member)
    out = [campaign]

    def rel(src: str, dst: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {"type": "relationship", "spec_version": "2.1",
                "id": deterministic_id("relationship", f"{cid}|{src}|{dst}"),
                "created": ts, "modified": ts, "created_by_ref": created_by_ref,
                "relationship_type": "related-to", "source_ref": src, "target_ref": dst,
                "object_marking_refs": marking, **extra}

    for (a, b), ev in sorted(evidence.items()):
        pair_level, pair_audience = narrowest_audience(
            [*inputs.get(a, ()), *inputs.get(b, ())], tlp)
        out.append(_marked(rel(a, b, {EVIDENCE: ev, "description": "shares " + ", ".join(
            f"{e['kind']} {e['value']}" for e in ev[:5])}), pair_level, pair_audience, member))
    for oid, *_ in group.objects:
        out.append(_marked(rel(oid, cid, {
            "description": "correlated into this candidate campaign"}), level, audience, member))
    return out


def publish_campaigns(store: Store, correlator: Correlator, *, member: str,
                      created_by_ref: str, sectors: Mapping[str, str] | None = None
                      ) -> list[dict[str, Any]]:
    """Store a new version of each candidate campaign (and its relationships)."""
    campaigns = []
    for group in correlator.groups():
        objs = campaign_objects(store, group, created_by_ref=created_by_ref, sectors=sectors,
                                member=member)
        store.put_many(objs, Provenance(member, "local"))
        campaigns.append(objs[0])
    return campaigns


def links_between(store: Store, a: str, b: str) -> list[tuple[str, str]]:
    """The (kind, value) evidence linking two objects directly."""
    x, y = sorted((a, b))
    lk = corr_links.c
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(lk.kind, lk.value).where(and_(lk.a == x, lk.b == y))
            .order_by(lk.kind, lk.value))]
