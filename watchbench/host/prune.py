"""Pruning a directory that grows one entry per boot, run or log: keep the newest, drop
the rest, so that a cache reused run after run does not slow down or fill the disk.
``wb gc`` (flows.gc) and the test cache (tests/conftest.py) both prune through here."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def prune_candidates(directory: Path, keep: int, protect: frozenset[Path] = frozenset(),
                     dirs_only: bool = False, older_than: float = 0.0,
                     now: float | None = None) -> list[Path]:
    """What ``prune_children`` would remove, oldest last, removing nothing: the entries of
    ``directory`` beyond its ``keep`` newest (by modification time) that are older than
    ``older_than`` seconds, never one of ``protect`` nor a link (``dirs_only``: nor a
    file, such as an index kept beside the run directories). A missing directory is
    empty."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0, not {keep}")
    try:
        entries = [p for p in directory.iterdir()
                   if not p.is_symlink() and (p.is_dir() or not dirs_only)]
    except FileNotFoundError:
        return []
    entries.sort(key=_mtime, reverse=True)
    limit = (time.time() if now is None else now) - older_than
    return [p for p in entries[keep:] if p not in protect and _mtime(p) <= limit]


def remove(path: Path) -> None:
    """A directory with everything under it, or a file; gone already is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def prune_children(directory: Path, keep: int, protect: frozenset[Path] = frozenset(),
                   dirs_only: bool = False) -> list[Path]:
    """Remove all but the ``keep`` newest entries of ``directory`` (by modification time),
    never one of ``protect`` nor a link (``dirs_only``: nor a file, such as an index kept
    beside the run directories); returns what was removed. A missing directory is empty."""
    removed = prune_candidates(directory, keep, protect, dirs_only)
    for path in removed:
        remove(path)
    return removed


def disk_usage(path: Path) -> int:
    """Bytes ``path`` takes on disk (what removing it frees), links not followed."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return 0
    total = info.st_blocks * 512
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
                except FileNotFoundError:
                    continue
    return total


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
