"""`./wb all`: every stage in order, each one reusing what is cached.

deps → fetch → patch → config → build (``kernel.variant``) → boot → bench → report. The
active tree is left with the series applied, so ``./wb vm.run`` boots what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from watchbench.host import deps
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import trees
from watchbench.kernel.build import Kernel
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import Composer, stack
from watchbench.report import write_report
from watchbench.results.store import load_runs
from watchbench.settings import Settings
from watchbench.suite.run import run_bench


@dataclass
class PipelineResult:
    tree: Tree
    installed: list[str]
    kernel: Kernel
    run_dir: Path
    report: Path


def run_all(settings: Settings, series: str | None, fragments: list[str] | None, suite: str,
            accel: str | None, tree: str | None = None, base: str | None = None,
            tarball: str | None = None, runner: Runner = default_runner,
            progress: Progress | None = None) -> PipelineResult:
    """The whole pipeline on the bench series + ``series``; returns what it made."""
    progress = progress or Silent()
    installed = deps.ensure(deps.PIPELINE, runner)
    progress.step(f"host tools: installed {', '.join(installed)}" if installed
                  else "host tools: all present")
    selected = trees.select(settings, tree, base, tarball, runner, progress)
    progress.step(f"tree {selected.id}: {selected.src} at {selected.base_label} "
                  f"({selected.base[:12]})")
    variant = stack(settings, series or "")
    if variant is not None:
        progress.step(f"applying {variant.name} ({len(variant.patches)} patches) "
                      f"to {selected.base_label}")
    kernel = Composer(settings, selected, runner, progress).kernel(variant, fragments or None)
    run_dir = run_bench(settings, suite, accel, label="all", kernel=kernel, runner=runner,
                        progress=progress)
    df = load_runs(settings.runs_dir, run_ids=[run_dir.name])
    report = write_report(df, settings.reports_dir, baseline=None, candidate=None,
                          judgement=settings.decision)
    return PipelineResult(selected, installed, kernel, run_dir, report)
