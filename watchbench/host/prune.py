"""Pruning a directory that grows one entry per boot, run or log: keep the newest, drop
the rest, so that a cache reused run after run does not slow down or fill the disk."""

from __future__ import annotations

import shutil
from pathlib import Path


def prune_children(directory: Path, keep: int, protect: frozenset[Path] = frozenset(),
                   dirs_only: bool = False) -> list[Path]:
    """Remove all but the ``keep`` newest entries of ``directory`` (by modification time),
    never one of ``protect`` nor a link (``dirs_only``: nor a file, such as an index kept
    beside the run directories); returns what was removed. A missing directory is empty."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0, not {keep}")
    try:
        entries = [p for p in directory.iterdir()
                   if not p.is_symlink() and (p.is_dir() or not dirs_only)]
    except FileNotFoundError:
        return []
    entries.sort(key=_mtime, reverse=True)
    removed = []
    for path in entries[keep:]:
        if path in protect:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
