"""Fixtures of the respond tests: the federation tests' fast sync loop, for real nodes."""

from tests.federation.conftest import fast_sync  # noqa: F401 (a fixture, found by name)
