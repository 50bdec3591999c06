"""gc: prune the stored runs and the cache (flows.gc). A dry run unless --delete: it says
what would go and how much that frees, so nobody loses a run by typing a command."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from watchbench.cli import as_typed, command, fit, settings_of
from watchbench.cli.options import GC_DAYS, GC_KEEP
from watchbench.flows.gc import Kind, Plan, free, plan
from watchbench.vm.share import size_text

SHOWN = 3  # entries listed by name per kind (the oldest), the rest counted


def plan_lines(p: Plan, deleting: bool) -> list[str]:
    """What would go (or went), kind by kind, with sizes; what stays and why."""
    lines = []
    for kind in Kind:
        entries = p.of(kind)
        size = sum(e.size for e in entries)
        lines.append(f"{kind.value:11} {len(entries):5}  {size_text(size):>10}   "
                     f"kept {p.kept.get(kind, 0)}  ({p.dirs.get(kind, '')})")
        for entry in entries[-SHOWN:][::-1] if not deleting else []:
            lines.append(f"    {entry.path.name}  {size_text(entry.size)}")
        if len(entries) > SHOWN and not deleting:
            lines.append(f"    ... and {len(entries) - SHOWN} more")
    total = sum(e.size for e in p.entries)
    lines.append(f"{'total':11} {len(p.entries):5}  {size_text(total):>10}")
    if p.stale_locks:
        lines.append(f"and {len(p.stale_locks)} lock file(s) of kernels already gone")
    lines += [f"in use, kept: {path} ({who})" for path, who in p.held]
    lines += p.notes
    return lines


@command
def gc(c: Any, delete: bool = False, keep_runs: object = None, keep_kernels: object = None,
       keep_builds: object = None, keep_boots: object = None,
       older_than: object = None) -> None:
    settings = settings_of(c)
    given = {"runs": keep_runs, "kernels": keep_kernels, "build_dirs": keep_builds,
             "boots": keep_boots}
    names = {"runs": "runs", "kernels": "kernels", "build_dirs": "builds", "boots": "boots"}
    changes = {field: GC_KEEP[names[field]].parse(value) for field, value in given.items()}
    changes["days"] = GC_DAYS.parse(older_than)
    policy = replace(settings.gc, **{k: v for k, v in changes.items() if v is not None})
    chosen = plan(settings, policy)
    if not delete:
        print(fit(f"dry run: nothing removed; what would go (older than {policy.days:g} days, "
                  "beyond the newest kept):"))
        for line in plan_lines(chosen, deleting=False):
            print(fit(line))
        if chosen.entries:
            print(as_typed("to free it: ./wb gc --delete (with the same options)"))
        return
    removed, skipped = free(chosen)
    done = Plan([e for e in chosen.entries if e in removed], chosen.kept, chosen.held,
                chosen.notes, chosen.dirs, chosen.stale_locks)
    print(fit(f"removed (older than {policy.days:g} days, beyond the newest kept):"))
    for line in plan_lines(done, deleting=True):
        print(fit(line))
    for path, why in skipped:
        print(fit(f"skipped, taken meanwhile: {path} ({why})"))
