"""The retro-hunt's one relational plan, as SQL text for DuckDB and for Spark SQL.

The index's atoms become small tables (`atom_tables`) and `plan_sql` joins them with a
relation of values: the stored events (a full scan) or the per-day summaries of distinct
values (`detect.summaries`). Every branch is an equi-join or a filter, never a range or a
nested-loop join, so Spark plans them as hash joins (the Spark differential test asserts no
`BroadcastNestedLoopJoin` in `explain()`):

- equality: `value = a.value` (IPv4 literals on address columns as integers);
- CIDR: `(address >> (32 - bits)) = a.net`, one branch per prefix length present;
- domain suffix: the value's last k labels (`regexp_extract`) = `a.suffix`, one branch per k;
- `MATCHES` / general `LIKE`: the column's distinct expressions written into the SQL as
  literals, evaluated once per value in one scan; the ids of those that match are exploded
  and joined with `regex_atoms` on `(col, rid)`.

The two engines differ only in spelling, which `Dialect` holds: identifier quoting, string
literals (Spark reads backslashes in literals unless `spark.sql.parser.escapedStringLiterals`;
its sessions set it, and any quote or backslash is written as hex besides), anchored and
unanchored regular expressions, and the array explode. Which rows are returned is the same
SQL on both; `_judge` then gives the exact verdicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.index import IndicatorIndex, columns_for, ipv4_ints
from shieldwall.detect.readers.base import HOST_COLUMNS, IP_COLUMNS, LINE, TS

IP4 = "_ip4:"  # prefix of the integer column kept beside each address column

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = rf"{_OCTET}([.]{_OCTET}){{3}}"


@dataclass(frozen=True)
class Dialect:
    """How one engine spells what the plan needs."""

    name: str

    def ident(self, name: str) -> str:
        if self.name == "spark":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def string(self, text: str) -> str:
        if self.name == "spark" and ("'" in text or "\\" in text):
            return f"decode(unhex('{text.encode().hex()}'), 'UTF-8')"
        return "'" + text.replace("'", "''") + "'"

    def full_match(self, expr: str, regex: str) -> str:
        if self.name == "spark":
            return f"({expr} RLIKE {self.string('^(?:' + regex + ')$')})"
        return f"regexp_full_match({expr}, {self.string(regex)})"

    def search(self, expr: str, regex: str) -> str:
        if self.name == "spark":
            return f"({expr} RLIKE {self.string(regex)})"
        return f"regexp_matches({expr}, {self.string(regex)})"

    def explode_nonnull(self, items: list[str]) -> str:
        if self.name == "spark":
            return f"explode(filter(array({', '.join(items)}), x -> x IS NOT NULL))"
        return f"unnest(list_filter([{', '.join(items)}], lambda x: x IS NOT NULL))"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


def _ipv4_int_sql(d: Dialect, col: str) -> str:
    """Canonical dotted-quad text -> integer in SQL, NULL for anything else."""
    parts = [f"CAST(split_part({col}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    return (f"CASE WHEN {d.full_match(col, _IPV4_RE)} THEN ({parts[0]} * 16777216 + "
            f"{parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]}) END")


_SCHEMAS = {
    "eq_atoms": pa.schema([("col", pa.string()), ("value", pa.string()),
                           ("slot", pa.int64()), ("atom", pa.int64())]),
    "suffix_atoms": pa.schema([("col", pa.string()), ("suffix", pa.string()),
                               ("labels", pa.int64()), ("slot", pa.int64()),
                               ("atom", pa.int64())]),
    "cidr_atoms": pa.schema([("col", pa.string()), ("bits", pa.int64()), ("net", pa.int64()),
                             ("slot", pa.int64()), ("atom", pa.int64())]),
    "regex_atoms": pa.schema([("col", pa.string()), ("regex", pa.string()),
                              ("rid", pa.int64()), ("slot", pa.int64()),
                              ("atom", pa.int64())]),
}


def atom_tables(index: IndicatorIndex, columns: list[str]) -> dict[str, pa.Table]:
    """The index's atoms as relations over event columns (what the plan joins against).

    Built with one Python pass over the atoms (no per-event work); IPv4 literals on address
    columns become integers so that the plan joins integers. Every table has its types even
    when empty (Spark cannot make a relation of Arrow's null type).
    """
    rows: dict[str, dict[str, list[Any]]] = {
        name: {f: [] for f in schema.names} for name, schema in _SCHEMAS.items()}

    def put(name: str, *row: Any) -> None:
        for key, x in zip(rows[name], row, strict=True):
            rows[name][key].append(x)

    # Read from the index's own structures (value -> keys), not from each indicator's atoms:
    # one pass over distinct values, and no atom is ever re-derived for bulk-compiled ones.
    # Values are canonical on both sides (`stix.values`): the index's, and the telemetry's,
    # which the readers wrote.
    scalar_cols = [c for c in columns if "[*]" not in c]
    cols_of: dict[str, list[str]] = {}

    def cols(path: str) -> list[str]:
        found = cols_of.get(path)
        if found is None:
            found = cols_of[path] = columns_for(path, scalar_cols)
        return found

    for path, v, slot, n in index.equality_atoms():
        for col in cols(path):
            put("eq_atoms", col, v, slot, n)
    for path, sfx_value, slot, n in index.suffix_atoms():
        for col in cols(path):
            put("suffix_atoms", col, sfx_value, sfx_value.count(".") + 1, slot, n)
    for path, lo, hi, slot, n in index.cidr_atoms(4):
        for col in cols(path):
            if col in IP_COLUMNS:
                bits = 32 - (hi - lo + 1).bit_length() + 1
                put("cidr_atoms", col, bits, lo >> (32 - bits), slot, n)
    rids: dict[tuple[str, str], int] = {}
    for path, expr, slot, n in index.regex_atoms():
        for col in cols(path):
            rid = rids.setdefault((col, expr), len(rids))
            put("regex_atoms", col, expr, rid, slot, n)
    tables = {name: pa.table(rows[name], schema=schema) for name, schema in _SCHEMAS.items()}
    eq_t = tables["eq_atoms"]
    # IPv4 literals on address columns: integers (the events' `_ip4:` columns); the rest
    # (IPv6, host names, odd spellings) stay strings, joined only to non-IPv4 rows.
    on_ip = pc.is_in(eq_t.column("col"), value_set=pa.array(list(IP_COLUMNS)))
    pos, ints = ipv4_ints(eq_t.column("value").combine_chunks())
    is4 = np.zeros(eq_t.num_rows, dtype=bool)
    is4[pos] = True
    is4 &= np.asarray(on_ip.to_numpy(zero_copy_only=False), dtype=bool)
    full = np.zeros(eq_t.num_rows, dtype=np.int64)
    full[pos] = ints
    tables["eq4_atoms"] = eq_t.filter(pa.array(is4)).set_column(
        1, "value", pa.array(full[is4], pa.int64()))
    tables["eq_atoms"] = eq_t.filter(pa.array(~is4))
    return tables


@dataclass(frozen=True)
class Source:
    """The relation the atoms are joined with, and how a column's values are read from it.

    `events`: the stored events, one column per STIX path (a full scan); `summary`: the
    per-day summaries, one row per (day, type, value), `type` naming the column.
    """

    relation: str
    keys: tuple[str, ...]  # what each candidate row carries besides (slot, atom, _col)
    value: Callable[[Dialect, str, list[str]], str]
    ip: Callable[[Dialect, str, list[str]], str | None]
    where: Callable[[Dialect, str], str]


def _event_value(d: Dialect, col: str, columns: list[str]) -> str:
    return f"e.{d.ident(col)}"


def _event_ip(d: Dialect, col: str, columns: list[str]) -> str | None:
    if col not in IP_COLUMNS:
        return None
    parsed = _ipv4_int_sql(d, f"e.{d.ident(col)}")
    if IP4 + col in columns:  # telemetry written before `_ip4:` columns is parsed in SQL
        return f"CAST(coalesce(e.{d.ident(IP4 + col)}, {parsed}) AS BIGINT)"
    return parsed


EVENTS = Source("events", (TS, LINE), _event_value, _event_ip, lambda d, col: "")
SUMMARY = Source(
    "summary", ("day", "value", "sources"),
    lambda d, col, columns: "e.value",
    lambda d, col, columns: "e.ip4" if col in IP_COLUMNS else None,
    lambda d, col: f"e.type = {d.string(col)}")


def plan_columns(columns: list[str]) -> list[str]:
    """The columns the plan matches: named by a STIX path, scalar, and not a number.

    List-valued columns (DNS answers) are matched by streaming hunts only."""
    return [c for c in columns
            if "[*]" not in c and not c.startswith("_") and ":" in c
            and not c.endswith(("_port", "_count", "_packets"))]


def plan_sql(columns: list[str], tables: dict[str, pa.Table], d: Dialect = DUCKDB,
             source: Source = EVENTS, value_columns: list[str] | None = None) -> str:
    """The candidates: every column joined with the atoms that can hold its values.

    `columns` are the relation's own (for `events`: whether `_ip4:` integers exist);
    `value_columns` the STIX paths to match (for `events` its columns, for `summary` the
    `type`s present). Each join keeps only the source's keys and the atom, so a scan reads
    the joined column and a few narrow ones; `fetch_sql` then reads the few candidate events
    whole. (time, line) is a key in practice; where two files share one, the extra event
    gets the verdict on its own values, so a collision costs time, never a false hit.
    """
    used = {name: set(t.column("col").to_pylist()) for name, t in tables.items()}
    keys = ", ".join(f"e.{d.ident(k)}" for k in source.keys)
    parts: list[str] = []

    def part(lit: str, join: str, where: str = "") -> None:
        conds = " AND ".join(w for w in (source.where(d, col), where) if w)
        parts.append(f"SELECT {keys}, a.slot, a.atom, {lit} AS _col "
                     f"FROM {source.relation} e JOIN {join}"
                     + (f" WHERE {conds}" if conds else ""))

    for col in plan_columns(value_columns if value_columns is not None else columns):
        c = source.value(d, col, columns)
        lit = d.string(col)
        ip = source.ip(d, col, columns)
        not_ip = f"{ip} IS NULL" if ip else ""
        host = f"{not_ip} AND NOT contains({c}, ':')" if col in HOST_COLUMNS else not_ip
        if col in used["eq4_atoms"] and ip:
            part(lit, f"eq4_atoms a ON a.col = {lit} AND {ip} = a.value")
        if col in used["eq_atoms"]:
            part(lit, f"eq_atoms a ON a.col = {lit} AND {c} = a.value", not_ip)
        sfx = _rows_of(tables["suffix_atoms"], col)
        for k in sorted(set(sfx.column("labels").to_pylist())):
            tail = f"regexp_extract({c}, '([^.]+([.][^.]+){{{k - 1}}})$', 1)"
            part(lit, f"suffix_atoms a ON a.col = {lit} AND a.labels = {k} "
                      f"AND {tail} = a.suffix AND {c} <> a.suffix", host)
        if col in used["cidr_atoms"] and ip:
            cidr = _rows_of(tables["cidr_atoms"], col)
            for bits in sorted(set(cidr.column("bits").to_pylist())):
                part(lit, f"cidr_atoms a ON a.col = {lit} AND a.bits = {bits} "
                          f"AND ({ip} >> {32 - bits}) = a.net")
        if col in used["regex_atoms"]:
            rx = _rows_of(tables["regex_atoms"], col)
            exprs = dict(zip(rx.column("rid").to_pylist(), rx.column("regex").to_pylist(),
                             strict=True))
            matched = d.explode_nonnull([f"CASE WHEN {d.search(c, r)} THEN {rid} END"
                                         for rid, r in sorted(exprs.items())])
            inner_keys = ", ".join(f"e.{d.ident(k)} AS {d.ident(k)}" for k in source.keys)
            conds = " AND ".join(w for w in (source.where(d, col), f"{c} IS NOT NULL") if w)
            outer = ", ".join(f"m.{d.ident(k)}" for k in source.keys)
            parts.append(f"SELECT {outer}, a.slot, a.atom, {lit} AS _col FROM "
                         f"(SELECT {inner_keys}, {matched} AS rid FROM {source.relation} e "
                         f"WHERE {conds}) m "
                         f"JOIN regex_atoms a ON a.col = {lit} AND a.rid = m.rid")
    return "\nUNION ALL\n".join(parts)


def _rows_of(table: pa.Table, col: str) -> pa.Table:
    return table.filter(pc.equal(table.column("col"), col))


def drill_sql(d: Dialect, columns: list[str], hit_columns: list[str]) -> str:
    """The events behind the summaries' hits: an equi-join of each hit column with the
    distinct values found in it (`hits`: _col, value, slot, atom). The value is the
    column's own text, as the summary recorded it, so equality is exact by construction."""
    parts = [f"SELECT e.{d.ident(TS)}, e.{d.ident(LINE)}, h.slot, h.atom, h._col "
             f"FROM events e JOIN hits h ON h._col = {d.string(col)} "
             f"AND e.{d.ident(col)} = h.value"
             for col in hit_columns if col in columns]
    return "\nUNION ALL\n".join(parts)


def fetch_sql(d: Dialect) -> str:
    """The candidate events whole, with the atom each was met by."""
    ts, line = d.ident(TS), d.ident(LINE)
    return (f"SELECT e.*, c.slot, c.atom, c._col FROM cands c JOIN events e "
            f"ON e.{ts} = c.{ts} AND e.{line} = c.{line}")


FETCH_SQL = fetch_sql(DUCKDB)
