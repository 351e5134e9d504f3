"""The dashboard fixtures of tests/web: a seeded store and the TAXII app with the dashboard."""

from tests.web.conftest import client, seeded

__all__ = ["client", "seeded"]
