"""The dashboard fixtures of tests/web: a seeded store and the TAXII app with the dashboard;
and the TAXII tests' backend (SQLite, PostgreSQL) for the attacks on a real server."""

from tests.taxii.conftest import backend, pg_url
from tests.web.conftest import client, seeded

__all__ = ["backend", "client", "pg_url", "seeded"]
