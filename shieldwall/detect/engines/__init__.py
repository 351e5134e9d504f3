"""Where the retro-hunt's plan runs: DuckDB on this machine, or Apache Spark.

Both engines take the same SQL text (`detect.retro_plan`) and answer with Arrow tables; they
differ only in how they are started and how they read Parquet. `open_engine` starts one and
turns what stops an engine from starting (a missing `pyspark`, a wrong Java, an unreachable
master) into one `EngineError` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from shieldwall.detect.retro_plan import Dialect
from shieldwall.errors import ShieldwallError

ENGINES = ("duckdb", "spark")


class EngineError(ShieldwallError):
    """The engine cannot run the plan (not installed, wrong Java, master unreachable)."""


class Engine(Protocol):
    dialect: Dialect
    # The columns naming an event in the candidates: `retro_plan.ROW_KEYS` (file, row
    # number: DuckDB fetches those rows alone) or `retro_plan.EVENT_KEYS` (time, line).
    row_keys: tuple[str, ...]

    def view(self, name: str, files: list[Path], where: str = "",
             filesystem: Any = None) -> dict[str, str]:
        """Parquet files (their columns unified by name) as relation `name`; its columns
        and their types (`retro_plan.is_string` reads them). `filesystem`: a `pyarrow.fs`
        filesystem the files are paths of (an object store), None for local paths."""
        ...

    def register(self, name: str, table: pa.Table) -> None:
        """A small Arrow table (the atoms, the hits) as relation `name`."""
        ...

    def arrow(self, sql: str) -> pa.Table: ...

    def explain(self, sql: str) -> str:
        """The physical plan, as text."""
        ...

    def close(self) -> None: ...


def open_engine(name: str = "duckdb", master: str | None = None) -> Engine:
    if name == "duckdb":
        if master:
            raise EngineError("--master is for --engine spark")
        from shieldwall.detect.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine()
    if name == "spark":
        from shieldwall.detect.engines.spark_engine import SparkEngine

        return SparkEngine.start(master)
    raise EngineError(f"--engine {name!r}: choose one of {', '.join(ENGINES)}")
