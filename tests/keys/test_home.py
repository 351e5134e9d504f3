"""The node's keys in its home: made once, private, the same for every process."""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from shieldwall.keys import node_key
from shieldwall.keys.home import KeyFileError


def test_a_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = node_key(tmp_path, "cursors")
    assert len(key) == 32
    assert node_key(tmp_path, "cursors") == key
    assert node_key(tmp_path, "other") != key
    path = tmp_path / "keys" / "cursors.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "keys").iterdir() if p.name.startswith(".")] == []


def test_processes_racing_for_a_new_key_all_get_the_same(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        keys = set(pool.map(node_key, [tmp_path] * 16, ["cursors"] * 16))
    assert len(keys) == 1


def test_a_damaged_key_is_refused_with_what_to_do(tmp_path: Path) -> None:
    node_key(tmp_path, "cursors")
    (tmp_path / "keys" / "cursors.key").write_text("not hex\n")
    with pytest.raises(KeyFileError, match="remove it"):
        node_key(tmp_path, "cursors")
    with pytest.raises(ValueError):
        node_key(tmp_path, "../escape")
