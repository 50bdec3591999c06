"""`inv all`: every stage in order, each one reusing what is cached."""

from __future__ import annotations

from pathlib import Path

from watchbench import commands, patching
from watchbench.benchrun import run_bench
from watchbench.build import build
from watchbench.reporting import make_report
from watchbench.settings import Settings
from watchbench.tree import active


def run_all(settings: Settings, series: str | None, fragments: list[str], suite: str,
            accel: str | None, tree: str | None = None, base: str | None = None,
            tarball: str | None = None) -> Path:
    """deps → fetch → patch → config → build → boot → bench → report; returns the report path."""
    commands.ensure_deps()
    commands.fetch(settings, tree, base, tarball)
    names = [n for n in [settings.bench_series, *(series or "").split(",")] if n.strip()]
    if names:
        commands.apply_series(settings, ",".join(dict.fromkeys(names)))
    else:
        patching.reset(active(settings))
    commands.configure_tree(settings, fragments or None)
    kernel = build(settings)
    run_dir = run_bench(settings, suite, accel, label="all", kernel=kernel)
    return make_report(settings, [run_dir.name], [], [], settings.project_root / "reports")
