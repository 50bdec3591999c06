"""``wb gc``: what the stored runs and the cache hold beyond what is kept, and freeing it.

``plan`` removes nothing (the dry run prints it); ``free`` removes what a plan lists. What
stays, whatever the counts say:

- the runs the history names (``./wb ci --record``: its trend needs them), and every run
  when the history cannot be read (its names are then unknown);
- the kernels the kept runs were made on (their next gate rebuilds nothing);
- each tree's build directory of its current configuration (the next build is
  incremental);
- anything touched in the last hour or since the oldest running command started (the
  ``since`` its lock file holds): a running command may still write or read it;
- what a running command holds: a kernel tree's build directories while its lock
  (``trees/<id>/lock``) is held, and a kernel while its build lock (``kernels/<key>.lock``)
  or its tree's lock is held. ``free`` takes those locks, without waiting, around each
  removal, so a command starting meanwhile waits for it, or it skips the entry. A
  kernel's build lock goes with it, removed while held (``host.lock.remove_held``: a
  command that opened it meanwhile takes the new file), and so do the build locks left
  of kernels already gone.

Trees themselves (sources), downloads and ccache are not touched: ``kernel.fetch`` and
ccache's own size limit own them.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from watchbench.host.lock import Lock, LockBusy, flocks_now, held_by, remove_held
from watchbench.host.prune import disk_usage, prune_candidates, remove
from watchbench.kernel.build import kernels_dir
from watchbench.kernel.trees import META, trees_dir
from watchbench.results.catalog import read_stored
from watchbench.results.history import HISTORY_FILE, HistoryError, read_entries
from watchbench.settings import GcSettings, Settings

DAY = 86400.0
IN_USE_S = 3600.0  # nothing touched in the last hour goes: a command may still use it


class Kind(StrEnum):
    """What ``wb gc`` prunes, in the order it reports them."""

    RUNS = "runs"
    KERNELS = "kernels"
    BUILD_DIRS = "build dirs"
    BOOTS = "boots"
    LOGS = "logs"


@dataclass(frozen=True)
class Entry:
    """One directory or file to remove, its size on disk, and the locks a command takes
    to use it, each with what it guards (taken, not waited for, while it is removed)."""

    kind: Kind
    path: Path
    size: int
    locks: tuple[tuple[Path, str], ...] = ()
    # lock files that guard only this entry: removed with it, while still held
    lock_files: tuple[Path, ...] = ()


@dataclass
class Plan:
    """What would go (``entries``), what stays of each kind, and what stays because a
    running command holds it (path, who)."""

    entries: list[Entry] = field(default_factory=list)
    kept: dict[Kind, int] = field(default_factory=dict)
    held: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dirs: dict[Kind, Path] = field(default_factory=dict)
    stale_locks: list[Path] = field(default_factory=list)  # of kernels already gone

    def of(self, kind: Kind) -> list[Entry]:
        return [e for e in self.entries if e.kind is kind]


def _who(data: dict) -> str:
    since = data.get("since")
    when = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, int | float) \
        else "?"
    return f"pid {data.get('pid', '?')} ({str(data.get('command', '?'))[:60]}) since {when}"


def running_locks(settings: Settings) -> dict[Path, dict]:
    """The lock files of this cache that a running command holds, with what it wrote."""
    candidates = [*trees_dir(settings).glob("*/lock"), *trees_dir(settings).glob("*.lock"),
                  *kernels_dir(settings).glob("*.lock")]
    found = {}
    held = flocks_now()
    for path in candidates:
        data = held_by(path, held)
        if data is not None:
            found[path] = data
    return found


def _protected_runs(runs_dir: Path, notes: list[str]) -> frozenset[Path] | None:
    """The run directories the history names; None when it cannot be read (keep all)."""
    path = runs_dir / HISTORY_FILE
    if not path.exists():
        return frozenset()
    try:
        entries = read_entries(path)
    except HistoryError as exc:
        notes.append(f"every run kept: the history cannot be read ({exc.message})")
        return None
    return frozenset(runs_dir / r for entry in entries for r in entry["run_ids"])


def plan(settings: Settings, policy: GcSettings | None = None,
         now: float | None = None) -> Plan:
    """What ``wb gc`` would remove under ``policy`` (default: settings gc); removes nothing."""
    policy = policy or settings.gc
    now = time.time() if now is None else now
    out = Plan()
    locks = running_locks(settings)
    limit = now - max(policy.days * DAY, IN_USE_S)
    starts = [float(d["since"]) for d in locks.values()
              if isinstance(d.get("since"), int | float)]
    if starts:
        limit = min(limit, min(starts))
    older = now - limit
    for path, data in sorted(locks.items()):
        out.notes.append(f"running: {_who(data)} holds {path}")

    runs_dir, cache = settings.runs_dir, settings.cache_dir
    out.dirs = {Kind.RUNS: runs_dir, Kind.KERNELS: kernels_dir(settings),
                Kind.BUILD_DIRS: trees_dir(settings), Kind.BOOTS: cache / "boots",
                Kind.LOGS: cache / "logs"}

    # Runs: the newest, the history's, the recent.
    all_runs = [p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()] \
        if runs_dir.is_dir() else []
    protect = _protected_runs(runs_dir, out.notes)
    gone_runs = [] if protect is None else prune_candidates(
        runs_dir, policy.runs, protect, dirs_only=True, older_than=older, now=now)
    out.entries += [Entry(Kind.RUNS, p, disk_usage(p)) for p in gone_runs]
    out.kept[Kind.RUNS] = len(all_runs) - len(gone_runs)

    # Kernels: the newest, the kept runs', the ones a running command holds.
    kept_keys = {read_stored(p).kernel_key for p in all_runs if p not in set(gone_runs)}
    kernels = kernels_dir(settings)
    needed = frozenset(kernels / k for k in kept_keys if k)
    candidates = prune_candidates(kernels, policy.kernels, needed, dirs_only=True,
                                  older_than=older, now=now)
    all_kernels = [p for p in kernels.iterdir() if p.is_dir()] if kernels.is_dir() else []
    gone_kernels = []
    for path in candidates:
        guards = [(kernels / f"{path.name}.lock", f"the build of kernel {path.name}")]
        tree = _tree_of(path)
        if tree:  # a flow (ci, check) holds its tree's lock while it boots its kernels
            guards.append((trees_dir(settings) / tree / "lock", f"kernel tree {tree}"))
        holder = next((locks[lock] for lock, _ in guards if lock in locks), None)
        if holder is not None:
            out.held.append((path, _who(holder)))
            continue
        gone_kernels.append(Entry(Kind.KERNELS, path, disk_usage(path), tuple(guards),
                                  (guards[0][0],)))
    out.entries += gone_kernels
    out.kept[Kind.KERNELS] = len(all_kernels) - len(gone_kernels)
    # the build locks of kernels no longer there (gc used to leave them)
    out.stale_locks = [lock for lock in sorted(kernels.glob("*.lock")) if lock not in locks
                       and not (kernels / lock.stem).exists()] if kernels.is_dir() else []

    # Build directories: per tree, the newest and the current configuration's.
    kept_builds = 0
    roots = sorted(p for p in trees_dir(settings).iterdir() if p.is_dir()) \
        if trees_dir(settings).is_dir() else []
    for root in roots:
        builds = root / "build"
        if not (root / META).is_file() or not builds.is_dir():
            continue
        current = _current_config(root)
        protect_build = frozenset({builds / current} if current else set())
        candidates = prune_candidates(builds, policy.build_dirs, protect_build,
                                      dirs_only=True, older_than=older, now=now)
        every = [p for p in builds.iterdir() if p.is_dir()]
        holder = locks.get(root / "lock")
        if holder is not None:
            out.held += [(p, _who(holder)) for p in candidates]
            candidates = []
        kept_builds += len(every) - len(candidates)
        out.entries += [Entry(Kind.BUILD_DIRS, p, disk_usage(p),
                              ((root / "lock", f"kernel tree {root.name}"),))
                        for p in candidates]
    out.kept[Kind.BUILD_DIRS] = kept_builds

    # Boots and logs: the newest and the recent.
    for kind, directory, keep, dirs_only in ((Kind.BOOTS, cache / "boots", policy.boots, True),
                                             (Kind.LOGS, cache / "logs", policy.logs, False)):
        gone = prune_candidates(directory, keep, dirs_only=dirs_only, older_than=older, now=now)
        every = [p for p in directory.iterdir() if dirs_only is False or p.is_dir()] \
            if directory.is_dir() else []
        out.entries += [Entry(kind, p, disk_usage(p)) for p in gone]
        out.kept[kind] = len(every) - len(gone)
    return out


def _tree_of(kernel: Path) -> str:
    """The tree a kernel was built from (its kernel.json), or "" when unreadable."""
    try:
        value = json.loads((kernel / "kernel.json").read_text()).get("tree_id", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) and "/" not in value else ""


def _current_config(tree_root: Path) -> str:
    try:
        value = json.loads((tree_root / META).read_text()).get("config_hash", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) and "/" not in value else ""


def free(plan_: Plan) -> tuple[list[Entry], list[tuple[Path, str]]]:
    """Remove what ``plan_`` lists, each entry under its lock taken without waiting: an
    entry whose lock a command took since the plan was made is skipped. Returns what was
    removed and what was skipped (path, why)."""
    removed: list[Entry] = []
    skipped: list[tuple[Path, str]] = []
    for entry in plan_.entries:
        try:
            with ExitStack() as held:
                for lock, what in entry.locks:
                    held.enter_context(Lock(lock, what, wait=False))
                remove(entry.path)
                for lock in entry.lock_files:
                    remove_held(lock)
        except LockBusy as exc:
            skipped.append((entry.path, exc.message))
            continue
        removed.append(entry)
    for lock in plan_.stale_locks:
        try:
            with Lock(lock, f"the build of kernel {lock.stem}", wait=False):
                remove_held(lock)
        except LockBusy as exc:
            skipped.append((lock, exc.message))
    return removed, skipped
