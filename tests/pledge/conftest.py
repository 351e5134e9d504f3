"""Fixtures for the Pledge checks: the bundled corpus built once, a node home, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shieldwall.config import init_home
from shieldwall.pledge.corpus import BreachCorpus, bundled_corpus

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def corpus() -> BreachCorpus:
    return bundled_corpus()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "node"
    init_home(h, "estonia")
    yield h


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def run(cli: CliRunner, *args: str) -> str:
    from shieldwall.cli.main import app

    res = cli.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output
