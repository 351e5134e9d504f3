"""The retro-hunt plan on DuckDB, in this process: the default, for one machine's telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from shieldwall.detect.retro_plan import DUCKDB, ROW_KEYS


def file_list(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


class DuckDBEngine:
    dialect = DUCKDB
    # An event is named by its file and row number (free to read, and the fetch of the
    # candidate events then reads their rows of their files alone).
    row_keys = ROW_KEYS

    def __init__(self, threads: int = 2) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute(f"SET threads TO {int(threads)}")
        # Keep the Arrow tables registered here alive as long as the connection.
        self._tables: dict[str, pa.Table] = {}

    def view(self, name: str, files: list[Path], where: str = "",
             filesystem: Any = None) -> dict[str, str]:
        if filesystem is not None:  # an object store: Arrow reads it, DuckDB scans that
            from shieldwall.detect.engines.storage import dataset

            self.register(f"{name}_objects", dataset([str(f) for f in files], filesystem))
            self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_objects"
                             + (f" WHERE {where}" if where else ""))
            return {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {name}").fetchall()}
        f, r = (self.dialect.ident(k) for k in ROW_KEYS)
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT *, filename AS {f}, "
                         f"file_row_number AS {r} FROM read_parquet({file_list(files)}, "
                         "union_by_name = true, hive_partitioning = false)"
                         + (f" WHERE {where}" if where else ""))
        return {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {name}").fetchall()
                if r[0] not in ROW_KEYS}

    def register(self, name: str, table: Any) -> None:
        self._tables[name] = table
        self.con.register(name, table)

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def explain(self, sql: str) -> str:
        return "\n".join(r[1] for r in self.con.execute(f"EXPLAIN {sql}").fetchall())

    def close(self) -> None:
        self.con.close()
