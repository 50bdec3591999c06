"""`./wb bisect`: find the commit that made a benchmark slower, with git bisect and our
measurement, saying at each step how sure the classification is.

Each step builds the commit (incrementally, content-keyed), boots it ``rounds`` times (the
bisected benchmark's runs of the suite only; under icount, ``jobs`` boots at once) and
decides its boots against those of the known-good and the known-bad commit with the gate's
own decision function (``decision.decide``, boots unpaired): unchanged from good and not
from bad is good, the reverse is bad; anything else goes to the nearer side and says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from watchbench.errors import InputError, TreeError
from watchbench.flows.at_once import at_once, boot_jobs, say_jobs
from watchbench.flows.kernels import KernelSource
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import trees
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import Composer
from watchbench.results.store import load_runs
from watchbench.settings import JUDGEMENT, Settings
from watchbench.stats.compare import boot_table
from watchbench.stats.decision import Decision, Verdict, decide
from watchbench.suite.run import run_bench

BenchFn = Callable[..., Path]

FIRST_BAD = re.compile(r"^([0-9a-f]{7,40}) is the first bad commit", re.M)


@dataclass
class Step:
    commit: str
    subject: str
    median: float
    verdict: str  # good | bad (git bisect's own words)
    vs_good: Decision
    vs_bad: Decision
    sure: bool  # both decisions agree; False: the nearer side was taken

    def describe(self) -> str:
        how = "sure" if self.sure else "nearer side, not decided"
        return (f"{self.commit[:12]} {self.verdict:4}  median {self.median:,.1f}  ({how}: vs good "
                f"{self.vs_good.verdict} {self.vs_good.change:+.1%}, vs bad "
                f"{self.vs_bad.verdict} {self.vs_bad.change:+.1%})  {self.subject}")


@dataclass
class Measure:
    """How one commit's samples are taken: build, boot ``rounds`` times, pick one metric.
    Built once per bisect (``run_bisect``), it also carries what the bisect itself needs
    (the settings' decision, the runner, the progress, the kernels to put back)."""

    settings: Settings
    benchmark: str
    metric: str
    params: str
    suite: str
    accel: str
    rounds: int
    runner: Runner
    progress: Progress
    kernels: KernelSource
    bench: BenchFn = run_bench
    jobs: int = 1  # boots at once (at_once.boot_jobs)

    def samples(self, commit: str) -> np.ndarray:
        """The per-boot log medians of the metric at ``commit`` (one per boot). Each boot
        runs the suite's runs of the bisected benchmark only (and the conformance run every
        boot has): the rest would be measured and thrown away."""
        kernel = self.kernels.at_commit(commit)
        boot = partial(self.bench, self.settings, self.suite, self.accel,
                       label=f"bisect {commit[:12]}", kernel=kernel, runner=self.runner,
                       progress=self.progress, only=frozenset({self.benchmark}))
        ids = [run_dir.name for run_dir in at_once([boot] * self.rounds, self.jobs, self.runner)]
        df = load_runs(self.settings.runs_dir, run_ids=ids)
        rows = df[(df["benchmark"].astype(str) == self.benchmark)
                  & (df["metric"].astype(str) == self.metric) & (df["status"] == "ok")]
        if self.params:
            rows = rows[rows["params"].astype(str) == self.params]
        if rows.empty:
            raise InputError(f"no ok samples of {self.benchmark} {self.metric} {self.params} "
                             f"at {commit[:12]}",
                             hint="check --benchmark/--metric/--params against `./wb compare` output")
        if rows["params"].nunique() > 1:
            choices = ", ".join(sorted(rows["params"].astype(str).unique())[:6])
            raise InputError(f"{self.benchmark} {self.metric} has several parameter sets; pick one "
                             f"with --params", hint=f"for example: {choices}")
        boots = boot_table(rows, {"commit": ids})  # the gate's own boot summary
        if boots["log_median"].isna().any():
            raise InputError(f"{self.benchmark} {self.metric} has values <= 0 at {commit[:12]}",
                             hint="bisect a timing or a rate: it is judged in relative terms")
        return boots["log_median"].to_numpy(dtype=float)


def classify(boots: np.ndarray, good: np.ndarray, bad: np.ndarray, *, direction: str = "lower",
             threshold: float = JUDGEMENT.threshold, alpha: float = JUDGEMENT.alpha
             ) -> tuple[str, Decision, Decision, bool]:
    """good or bad for one commit's per-boot log medians (pure).

    Unchanged from good while not unchanged from bad is good, the reverse is bad; when
    the decisions do not say (both or neither unchanged, or undecided), the side whose
    mean log level is nearer is taken and ``sure`` is False.
    """
    options = {"direction": direction, "threshold": threshold, "level": alpha, "paired": False}
    vs_good, vs_bad = decide(good, boots, **options), decide(bad, boots, **options)
    same_good = vs_good.verdict is Verdict.UNCHANGED
    same_bad = vs_bad.verdict is Verdict.UNCHANGED
    if same_good != same_bad:
        return ("good" if same_good else "bad"), vs_good, vs_bad, True
    level = np.mean(boots)
    nearer = "bad" if abs(level - np.mean(bad)) < abs(level - np.mean(good)) else "good"
    return nearer, vs_good, vs_bad, False


def run_bisect(settings: Settings, good: str, bad: str, benchmark: str, metric: str | None = None,
           params: str = "", suite: str | None = None, accel: str | None = None,
           rounds: int | None = None, runner: Runner = default_runner,
           progress: Progress | None = None, kernels: KernelSource | None = None,
           bench: BenchFn = run_bench, wait: bool = True,
           tree: Tree | None = None, jobs: int | None = None) -> tuple[str, list[Step]]:
    """Return (first bad commit, the steps taken). The tree is put back where it was.

    None takes the configured default (``settings.bisect``); ``tree`` is where it
    bisects (default: the active tree; ``wb bisect`` inside a kernel checkout: a
    worktree of it); ``jobs``: a commit's boots at once (``at_once.boot_jobs``: more
    than one under icount only); ``kernels`` builds a commit (default: a ``Composer`` on
    the tree) and ``bench`` boots it: the seams a fast test fakes.
    """
    progress = progress or Silent()
    defaults = settings.bisect
    metric, suite = metric or defaults.metric, suite or defaults.suite
    accel, rounds = accel or defaults.accel, rounds or defaults.rounds
    jobs = boot_jobs(defaults.jobs if jobs is None else jobs, accel, rounds)
    tree = tree or trees.active(settings)
    kernels = kernels or Composer(settings, tree, runner, progress, wait=wait, purpose="bisect")
    measure = Measure(settings, benchmark, metric, params, suite, accel, rounds, runner, progress,
                      kernels, bench, jobs)
    say_jobs(progress, jobs)
    with kernels.hold():  # git bisect moves the tree for the whole run
        return _bisect(tree, good, bad, measure)


def _bisect(tree: Tree, good: str, bad: str, measure: Measure) -> tuple[str, list[Step]]:
    """git bisect between ``good`` and ``bad`` in ``tree``, each step measured and judged
    against the two ends; the tree is put back whatever happens."""
    judged, progress = measure.settings.decision, measure.progress
    git = tree.git(measure.runner)
    if git.dirty():
        raise TreeError(f"{tree.src} has uncommitted changes", hint="commit or discard them first")
    good_id, bad_id = git.rev(good), git.rev(bad)
    if not good_id or not bad_id:
        raise InputError(f"--good {good!r} or --bad {bad!r} is not a commit in {tree.src}")
    prior = git.head()
    steps: list[Step] = []
    try:
        progress.step(f"measuring good {good} and bad {bad} ({measure.rounds} boots each)")
        good_samples, bad_samples = measure.samples(good_id), measure.samples(bad_id)
        ends = decide(good_samples, bad_samples, direction="lower", threshold=judged.threshold,
                      level=judged.alpha, paired=False)
        progress.step(f"good median {np.exp(np.mean(good_samples)):,.1f}, bad median "
                      f"{np.exp(np.mean(bad_samples)):,.1f} (bad vs good: {ends.verdict}, "
                      f"{ends.change:+.1%})")
        if ends.verdict is Verdict.UNCHANGED:
            raise InputError(f"--bad {bad} is not distinguishable from --good {good}: "
                             f"{ends.reason}", hint="check the metric, or add --rounds")
        git("bisect", "start", bad_id, good_id)
        while True:
            commit = git.head()
            samples = measure.samples(commit)
            verdict, vs_good, vs_bad, sure = classify(samples, good_samples, bad_samples,
                                                      threshold=judged.threshold,
                                                      alpha=judged.alpha)
            subject = git.out("log", "-1", "--format=%s", commit)
            steps.append(Step(commit, subject, float(np.exp(np.mean(samples))), verdict,
                              vs_good, vs_bad, sure))
            progress.step(steps[-1].describe())
            git("checkout", "-q", "--detach", commit)
            answer = git("bisect", verdict)
            found = FIRST_BAD.search(answer.stdout)
            if found:
                return git.rev(found[1]) or found[1], steps
    finally:
        git("bisect", "reset", check=False)
        git("checkout", "-q", "--detach", prior, check=False)
        measure.kernels.restore()  # and the state file: series and configuration as they were
