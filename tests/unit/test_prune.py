"""Pruning keeps the newest entries and never what it is told to keep."""

from __future__ import annotations

import os

import pytest

from watchbench.host.prune import prune_children


def _entries(tmp_path, names):
    for age, name in enumerate(names):
        path = tmp_path / name
        if name.endswith(".log"):
            path.write_text("x")
        else:
            path.mkdir()
            (path / "inside").write_text("x")
        os.utime(path, (1_000_000 - age * 10, 1_000_000 - age * 10))  # first is newest


def test_the_newest_are_kept_and_the_rest_removed(tmp_path):
    _entries(tmp_path, ["a", "b", "c.log", "d"])
    removed = prune_children(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["c.log", "d"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_files_links_and_protected_entries_are_left_alone(tmp_path):
    _entries(tmp_path, ["a", "index.log", "b", "c"])
    (tmp_path / "link").symlink_to(tmp_path / "c")
    removed = prune_children(tmp_path, 1, protect=frozenset({tmp_path / "c"}), dirs_only=True)
    assert [p.name for p in removed] == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c", "index.log", "link"]


def test_a_missing_directory_is_empty_and_a_negative_count_refused(tmp_path):
    assert prune_children(tmp_path / "none", 3) == []
    with pytest.raises(ValueError):
        prune_children(tmp_path, -1)
