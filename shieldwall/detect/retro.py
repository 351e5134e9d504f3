"""Retro-hunt: normalised telemetry kept as Parquet by day, matched as one relational plan.

`TelemetryStore` writes every batch a hunt reads to `<home>/telemetry/day=YYYY-MM-DD/` (the
same STIX-path columns, plus `_file`). `retro_hunt` turns the index's atoms into small tables
(`eq_atoms`, `suffix_atoms`, `cidr_atoms`, `regex_atoms`) and runs `plan_sql()`: a UNION ALL of
joins between the events and those tables. It uses only SQL that Spark SQL also has (equi-joins,
BETWEEN joins, `split_part`/`regexp_extract`/`rlike`-style functions, UNION ALL), so the same
plan runs on a cluster when the telemetry outgrows one machine. Candidate rows come back as Arrow
and are evaluated exactly, as in a streaming hunt. List-valued columns (DNS answers) are
matched by streaming hunts only.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shieldwall.detect import exact
from shieldwall.detect.index import Candidate, IndicatorIndex, _is_simple_like, columns_for
from shieldwall.detect.readers.base import IP_COLUMNS, LINE, TS, Observations
from shieldwall.stix.timestamps import now_us

DAY_US = 86_400 * 1_000_000


class TelemetryStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, obs: Observations) -> None:
        table = obs.table
        if table.num_rows == 0:
            return
        table = table.append_column("_file", pa.array([obs.source] * table.num_rows,
                                                      pa.string()))
        days = pc.divide(pc.fill_null(table.column(TS), 0), DAY_US).to_numpy()
        for day in np.unique(days).tolist():
            part = table.filter(pa.array(days == day)) if len(np.unique(days)) > 1 else table
            name = np.datetime64(int(day), "D").astype(str)
            d = self.root / f"day={name}"
            d.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, d / f"{obs.kind}-{uuid.uuid4().hex}.parquet",
                           compression="zstd")


def _ipv4_int_sql(col: str) -> str:
    parts = [f"CAST(split_part({col}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    return f"({parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]})"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def atom_tables(index: IndicatorIndex, columns: list[str]) -> dict[str, pa.Table]:
    """The index's atoms as relations over event columns (what the plan joins against)."""
    eq: dict[str, list[Any]] = {"col": [], "value": [], "slot": [], "atom": []}
    sfx: dict[str, list[Any]] = {"col": [], "suffix": [], "labels": [], "slot": [], "atom": []}
    cidr: dict[str, list[Any]] = {"col": [], "lo": [], "hi": [], "slot": [], "atom": []}
    rx: dict[str, list[Any]] = {"col": [], "regex": [], "slot": [], "atom": []}
    from shieldwall.detect.index import _ip_range, _norm, like_to_regex

    scalar_cols = [c for c in columns if "[*]" not in c]
    for slot, comp in index.indicators.items():
        for n, a in enumerate(comp.atoms):
            for col in columns_for(a.path, scalar_cols):
                if a.op in ("=", "IN") or (a.op == "LIKE" and not any(
                        c in a.values[0] for c in "%_")):
                    for v in a.values:
                        for k, x in (("col", col), ("value", _norm(a.path, v)), ("slot", slot),
                                     ("atom", n)):
                            eq[k].append(x)
                elif a.op == "LIKE" and _is_simple_like(a.values[0]):
                    s = _norm(a.path, a.values[0][2:])
                    for k, x in (("col", col), ("suffix", s), ("labels", s.count(".") + 1),
                                 ("slot", slot), ("atom", n)):
                        sfx[k].append(x)
                elif a.op == "ISSUBSET":
                    version, lo, hi = _ip_range(a.values[0], a.path)
                    if version == 4 and col in IP_COLUMNS:
                        for k, x in (("col", col), ("lo", lo), ("hi", hi), ("slot", slot),
                                     ("atom", n)):
                            cidr[k].append(x)
                else:
                    expr = a.values[0] if a.op == "MATCHES" else like_to_regex(a.values[0])
                    for k, x in (("col", col), ("regex", expr), ("slot", slot), ("atom", n)):
                        rx[k].append(x)
    return {"eq_atoms": pa.table(eq), "suffix_atoms": pa.table(sfx),
            "cidr_atoms": pa.table(cidr), "regex_atoms": pa.table(rx)}


def plan_sql(columns: list[str], tables: dict[str, pa.Table]) -> str:
    """One statement: every event column joined with the atoms that can hold its values."""
    parts = []
    for col in columns:
        if "[*]" in col or col.startswith("_") or col.endswith(("_port", "_count", "_packets")):
            continue
        c = f"e.{_q(col)}"
        lit = "'" + col.replace("'", "''") + "'"
        if lit[1:-1] in tables["eq_atoms"].column("col").to_pylist():
            parts.append(f"SELECT e.*, a.slot, a.atom, {lit} AS _col FROM events e "
                         f"JOIN eq_atoms a ON a.col = {lit} AND {c} = a.value")
        sfx = tables["suffix_atoms"].filter(pc.equal(tables["suffix_atoms"].column("col"),
                                                     col))
        for k in sorted(set(sfx.column("labels").to_pylist())):
            tail = f"regexp_extract({c}, '([^.]+(\\.[^.]+){{{k - 1}}})$', 1)"
            parts.append(f"SELECT e.*, a.slot, a.atom, {lit} AS _col FROM events e "
                         f"JOIN suffix_atoms a ON a.col = {lit} AND a.labels = {k} "
                         f"AND {tail} = a.suffix AND {c} <> a.suffix")
        if lit[1:-1] in tables["cidr_atoms"].column("col").to_pylist():
            parts.append(f"SELECT e.*, a.slot, a.atom, {lit} AS _col FROM events e "
                         f"JOIN cidr_atoms a ON a.col = {lit} AND {c} LIKE '%.%.%.%' AND "
                         f"{_ipv4_int_sql(c)} BETWEEN a.lo AND a.hi")
        if lit[1:-1] in tables["regex_atoms"].column("col").to_pylist():
            parts.append(f"SELECT e.*, a.slot, a.atom, {lit} AS _col FROM events e "
                         f"JOIN regex_atoms a ON a.col = {lit} AND regexp_matches({c}, a.regex)")
    return "\nUNION ALL\n".join(parts)


def retro_hunt(root: Path, index: IndicatorIndex, hunter: Any, since_us: int,
               now: int | None = None) -> int:
    """Match stored telemetry of the last `since_us` against the index; returns hits."""
    import duckdb

    files = sorted(root.glob("day=*/*.parquet")) if root.exists() else []
    start = (now_us() if now is None else now) - since_us
    first_day = np.datetime64(start // DAY_US, "D").astype(str)
    files = [f for f in files if f.parent.name[4:] >= first_day]
    if not files:
        return 0
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    file_list = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({file_list}, "
                f"union_by_name = true) WHERE {TS} >= {int(start)}")
    columns = [r[0] for r in con.execute("DESCRIBE events").fetchall()]
    tables = atom_tables(index, columns)
    for name, t in tables.items():
        con.register(name, t)
    sql = plan_sql(columns, tables)
    if not sql:
        return 0
    res = con.execute(sql).to_arrow_table()
    hits = 0
    event_cols = [c for c in res.column_names if c not in ("slot", "atom", "_col", "_file")]
    obs = Observations(res.select(event_cols), "retro", "retro")
    slots = res.column("slot").to_pylist()
    atoms = res.column("atom").to_pylist()
    cols = res.column("_col").to_pylist()
    srcs = res.column("_file").to_pylist()
    done: set[tuple[int, int, int]] = set()
    for i, (slot, n, col) in enumerate(zip(slots, atoms, cols, strict=True)):
        comp = index.indicators.get(slot)
        key = (res.column(LINE)[i].as_py(), hash(srcs[i]), slot)
        if comp is None or key in done:
            continue
        done.add(key)
        od = obs.observed_data(i)
        if exact.matches(comp.pattern, [od]):
            cand = Candidate(i, comp, comp.atoms[n], col, str(res.column(col)[i].as_py()))
            hunter._hit(comp, cand, Observations(obs.table, srcs[i], "retro"), i, od)
            hits += 1
    return hits
