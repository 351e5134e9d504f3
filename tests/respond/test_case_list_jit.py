"""The case list on PostgreSQL: the store's connections run without JIT compilation.

At 20,000 cases (2.1M objects) the planner's estimate for a link lookup through the
expression indexes of migration 0009 passed `jit_above_cost`, and every one of the 13
lookups of a page of 50 requests compiled for ~28 ms to run for ~1 ms (docs/benchmarks.md:
364 -> 31 ms a page). What can be asserted without timing: every connection, pooled or
not, has JIT off, whatever the server's default."""

from __future__ import annotations

import pytest

from shieldwall.store import Store
from tests.conftest import PG_URL, drop_pg_schema, pg_schema_url


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL tests need SHIELDWALL_TEST_DATABASE_URL")
@pytest.mark.parametrize("pooled", [False, True])
def test_store_connections_run_without_jit(pooled: bool) -> None:
    url, schema = pg_schema_url("nojit")
    try:
        store = Store.open(url, pooled=pooled)
        try:
            for _ in range(3):
                with store.engine.connect() as conn:
                    assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
                    # the URL's own options (here its search_path) still apply
                    assert conn.exec_driver_sql("SHOW search_path").scalar() == schema
        finally:
            store.close()
    finally:
        drop_pg_schema(schema)
