"""`./wb ci`: baseline vs candidate, booted in paired rounds until decided, one exit code.

Exit codes: 0 every gated metric unchanged or improved, 1 a gated metric regressed or a
benchmark broke on the candidate, 2 an infrastructure failure (patch, config, build,
boot, conformance), 3 a gated metric still undecided at the last look (0 with
``accept_undecided``). The baseline is the base plus our in-kernel benchmark series;
the candidate adds the series under test, so the in-kernel benchmark measures both.
Each round boots every variant once, in an order that alternates between rounds (ABBA),
so drift and first-boot effects fall on both sides alike.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path

import pandas as pd

from watchbench.errors import InputError, WatchbenchError
from watchbench.flows.at_once import at_once, boot_jobs, say_jobs
from watchbench.flows.explain import Explain, Explanation, explain_gate, parse_explain, to_explain
from watchbench.flows.kernels import KernelSource
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import Kernel
from watchbench.kernel.series import Series
from watchbench.kernel.variant import composing, own_series, stack
from watchbench.report import write_report
from watchbench.report.junit import write_junit
from watchbench.results import history
from watchbench.results.schema import MATCH_KEYS, Role
from watchbench.results.store import load_runs
from watchbench.settings import JUDGEMENT, CiSettings, Judgement, Settings
from watchbench.stats.compare import compare_frames, gate_exit
from watchbench.stats.decision import Looks, Verdict
from watchbench.stats.perpatch import per_patch_steps
from watchbench.suite.run import run_bench
from watchbench.vm.cachemodel import CacheModel
from watchbench.vm.qemu import Accel

EXIT_OK, EXIT_REGRESSED, EXIT_INFRA, EXIT_UNDECIDED = 0, 1, 2, 3
EXIT_CODES = {Verdict.UNCHANGED: EXIT_OK, Verdict.REGRESSED: EXIT_REGRESSED,
              Verdict.FAILED: EXIT_REGRESSED, Verdict.UNDECIDED: EXIT_UNDECIDED}
JUDGED = tuple(f.name for f in fields(Judgement))  # the judgement's parts, as options name them

# One boot of a kernel with a suite, stored as a run directory (``suite.run.run_bench``).
BenchFn = Callable[..., Path]


def parse_rounds(text: object, where: str) -> int | None:
    """Rounds as a user gives them: ``auto`` (None: until decided) or a number."""
    text = str(text).strip()
    if text == "auto":
        return None
    if not text.isdigit():
        raise InputError(f"{where} {text!r}: give a number of rounds or auto")
    return int(text)


@dataclass(kw_only=True)
class CiOptions(CiSettings):
    """One gate's options. Its settings are ``settings.CiSettings``'s fields, declared
    there once with their defaults and rules (a new one is a field here too), and the
    judgement is one ``settings.Judgement``; ``from_settings`` takes a user's configured
    ones and the options given. Three are read into what the flow uses (``__post_init__``:
    a shard record or a test may give them as the settings hold them): ``rounds`` None is
    ``--rounds auto`` (looks after ``min_rounds``, then every ``round_step`` rounds up to
    ``max_rounds`` or ``budget_s`` seconds of boots), ``profile`` an ``Explain``, and
    ``cache_model`` settled against ``accel``."""

    series: str
    rounds: int | None = None  # type: ignore[assignment]
    profile: Explain = Explain(CiSettings.profile)  # type: ignore[assignment]
    # on: every gate boot profiled with the cache model, its est_cycles_per_op gated;
    # "auto" (settings ci.cache_model, the default from_settings gives) is settled here:
    # on under icount, else off
    cache_model: CacheModel = CacheModel.OFF  # type: ignore[assignment]
    judgement: Judgement = JUDGEMENT  # threshold, alpha, noise floor: how a change is judged
    per_patch: bool = False
    accept_undecided: bool = False
    wait: bool = True  # for a kernel tree another command is changing (False: fail at once)
    record: bool = False
    out: Path = Path("reports")
    tree: str | None = None
    base: str | None = None
    tarball: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.rounds, str):
            self.rounds = parse_rounds(self.rounds, "--rounds")
        self.profile = parse_explain(self.profile)
        self.cache_model = gate_cache_model(str(self.cache_model), self.accel)

    @classmethod
    def from_settings(cls, settings: Settings, series: str, **given: object) -> CiOptions:
        """The configured settings (``settings.ci``, ``settings.decision``), then what was
        given (None: not given): a setting by its name (``threshold`` into the judgement)
        or any other option."""
        chosen = {name: value for name, value in given.items() if value is not None}
        judged = {name: chosen.pop(name) for name in JUDGED if name in chosen}
        configured = {f.name: getattr(settings.ci, f.name) for f in fields(CiSettings)}
        return cls(**{**configured, "series": series, "out": settings.reports_dir,
                      "judgement": replace(settings.decision, **judged), **chosen})

    def looks(self) -> Looks:
        alpha = self.judgement.alpha
        if self.rounds is not None:
            return Looks.fixed(self.rounds, alpha)
        return Looks.schedule(self.min_rounds, self.round_step, self.max_rounds, alpha)


@dataclass
class Variant:
    """One kernel to measure: the baseline, a prefix of the series, or the whole candidate."""

    role: Role
    patch_index: int  # patches of the series applied (0 = baseline)
    patch_subject: str
    series: Series | None
    kernel: Kernel | None = None
    run_ids: list[str] = field(default_factory=list)


@dataclass
class CiResult:
    exit_code: int
    answer: Verdict
    comparisons: pd.DataFrame
    regressed: list[str]
    rounds: int
    stop_reason: str
    report: Path
    junit: Path
    summary: Path
    per_patch: pd.DataFrame | None
    ci_id: str
    line: str  # verdict_line: the answer in one sentence
    explanation: Explanation | None = None  # where the moved metrics' instructions went
    profile_problem: str = ""  # why the profile could not be taken


def variants(settings: Settings, series_names: str, per_patch: bool) -> list[Variant]:
    """Baseline, [each prefix of the series,] candidate, each on the bench series
    (``kernel.variant.stack``). No series: an A/A run, where the candidate is the
    baseline kernel itself (measures the false-alarm rate)."""
    series = own_series(settings, series_names)
    if series is None:
        bench = stack(settings)
        return [Variant(Role.BASELINE, 0, "", bench),
                Variant(Role.CANDIDATE, 0, "A/A: same kernel", bench)]
    count = len(series.patches)
    out = [Variant(Role.BASELINE, 0, "", stack(settings, series_names, 0))]
    if per_patch:
        out += [Variant(Role.PATCH, i, series.patches[i - 1].subject,
                        stack(settings, series_names, i)) for i in range(1, count)]
    out.append(Variant(Role.CANDIDATE, count, series.patches[-1].subject,
                       stack(settings, series_names, count)))
    return out


def round_order(variants: list[Variant], round_index: int) -> list[Variant]:
    """Balanced order: forwards in even rounds, backwards in odd ones (A B, B A, ...)."""
    return list(variants) if round_index % 2 == 0 else list(reversed(variants))


def lock_decisions(locked: pd.DataFrame | None, look: pd.DataFrame, rounds: int) -> pd.DataFrame:
    """Merge one look into the decisions so far: a row decided at an earlier look keeps
    that decision (its alpha was spent then); the others take this look's row, and rows
    decided now record ``decided_at = rounds``."""
    look = look.copy()
    look["decided_at"] = [rounds if v != Verdict.UNDECIDED else pd.NA for v in look["verdict"]]
    if locked is None:
        out = look
    else:
        done = locked[locked["verdict"] != Verdict.UNDECIDED].set_index(MATCH_KEYS)
        fresh = look.set_index(MATCH_KEYS)
        fresh = fresh[~fresh.index.isin(done.index)]
        out = pd.concat([done, fresh]).reset_index()
    out["decided_at"] = out["decided_at"].astype("Int64")
    out.attrs = {**look.attrs}
    return out


@dataclass
class Measurement:
    """The boots of one CI invocation so far, variant by variant."""

    settings: Settings
    options: CiOptions
    variants: list[Variant]
    runner: Runner
    progress: Progress
    ci_id: str
    rounds: int = 0
    boot_seconds: float = 0.0
    bench: BenchFn = run_bench
    jobs: int = 1  # boots of a round at once (boot_jobs)
    # The rounds' indices in the whole design (a shard runs some of them; None: 0, 1, ...):
    # the index decides a round's order (round_order) and its pairing key (ci_round).
    plan: list[int] | None = None
    limit: int | None = None  # rounds there can be (recorded shards); None: as many as asked

    @property
    def round_index(self) -> int:
        return self.plan[self.rounds] if self.plan is not None else self.rounds

    def _boot(self, position: int, variant: Variant, total: str) -> Path:
        self.progress.step(f"round {self.rounds + 1}/{total}: {variant.role}"
                           + (f" {variant.patch_index}" if variant.role is Role.PATCH else ""))
        extra = {"ci_id": self.ci_id, "ci_role": variant.role, "ci_round": self.round_index,
                 "ci_position": position, "patch_index": variant.patch_index,
                 "patch_subject": variant.patch_subject}
        if self.options.cache_model is CacheModel.ON:  # profiled: est_cycles_per_op gated
            return self.bench(modelled(self.settings), self.options.suite, self.options.accel,
                              label=variant.role, kernel=variant.kernel, runner=self.runner,
                              progress=self.progress, extra=extra, profile=True)
        return self.bench(self.settings, self.options.suite, self.options.accel,
                          label=variant.role, kernel=variant.kernel, runner=self.runner,
                          progress=self.progress, extra=extra)

    def run_round(self, total: str) -> None:
        """One boot of every variant, in the round's balanced order; with ``jobs`` > 1 they
        run side by side (the order still decides ``ci_position``)."""
        start = time.monotonic()
        order = list(enumerate(round_order(self.variants, self.round_index)))
        run_dirs = at_once([partial(self._boot, position, variant, total)
                            for position, variant in order], self.jobs, self.runner)
        for (_, variant), run_dir in zip(order, run_dirs, strict=True):
            variant.run_ids.append(run_dir.name)
        self.rounds += 1
        self.boot_seconds += time.monotonic() - start

    def frame(self) -> pd.DataFrame:
        return load_runs(self.settings.runs_dir,
                         run_ids=[i for v in self.variants for i in v.run_ids])


def modelled(settings: Settings) -> Settings:
    """``settings`` with the profile's cache model on (its caches as configured)."""
    return replace(settings, profile=replace(settings.profile, cache_model=CacheModel.ON.value))


def gate_cache_model(mode: str, accel: str) -> CacheModel:
    """The gate's cache model from settings ci.cache_model or --cache-model: auto is on
    under icount and off under tcg and kvm; on needs icount, because the model rides on
    the instruction-count plugin."""
    if mode == "auto":
        return CacheModel.ON if accel == Accel.ICOUNT else CacheModel.OFF
    if mode == CacheModel.ON and accel != Accel.ICOUNT:
        raise InputError(f"--cache-model on with --accel {accel}: the cache model runs "
                         "in the instruction-count plugin, under icount only",
                         hint=f"./wb ci --accel {accel} --cache-model auto (off under "
                              f"{accel}), or ./wb ci --accel icount --cache-model on")
    return CacheModel(mode)


def check_cache_model(options: CiOptions) -> None:
    """A design given whole (a shard record, a test) is held to the same rule."""
    gate_cache_model(str(options.cache_model), options.accel)


def measure_until_decided(m: Measurement) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Rounds and looks: after each look's rounds, decide; stop when every gated metric
    is decided, when the answer can no longer change (a failure or regression is final),
    at the last look or when the next look would exceed the time budget."""
    options, looks = m.options, m.options.looks()
    total = str(looks.rounds[-1]) if options.rounds is not None else f"<={looks.rounds[-1]}"
    baseline, candidate = m.variants[0], m.variants[-1]
    decisions = None
    for k, target in enumerate(looks.rounds):
        while m.rounds < target:
            m.run_round(total)
        df = m.frame()
        look = compare_frames(df, baseline.run_ids, candidate.run_ids,
                              judgement=options.judgement, spend=looks.spend(k))
        decisions = lock_decisions(decisions, look, m.rounds)
        decisions.attrs.update(looks=list(looks.rounds[:k + 1]), rounds=m.rounds,
                               look_spend=[looks.spend(i) for i in range(k + 1)])
        gated = decisions[decisions["gated"]]
        open_rows = int((gated["verdict"] == Verdict.UNDECIDED).sum())
        answer = gate_exit(decisions)
        m.progress.step(f"look {k + 1} after {m.rounds} rounds: {len(gated) - open_rows} of "
                        f"{len(gated)} gated metrics decided")
        if open_rows == 0:
            return decisions, df, f"every gated metric decided after {m.rounds} rounds"
        if answer in (Verdict.FAILED, Verdict.REGRESSED):
            return decisions, df, f"{answer} after {m.rounds} rounds: the answer is final"
        if k + 1 < len(looks.rounds) and m.limit is not None and looks.rounds[k + 1] > m.limit:
            return decisions, df, (f"the shards hold {m.limit} complete rounds; the next look "
                                   f"needs {looks.rounds[k + 1]}")
        if k + 1 < len(looks.rounds):
            per_round = m.boot_seconds / max(m.rounds, 1)
            need = per_round * (looks.rounds[k + 1] - m.rounds)
            if m.boot_seconds + need > options.budget_s:
                return decisions, df, (f"time budget {options.budget_s:.0f} s reached after "
                                       f"{m.rounds} rounds")
    return decisions, df, f"last look ({m.rounds} rounds)"


def compose(settings: Settings, options: CiOptions, runner: Runner, progress: Progress,
            kernels: KernelSource | None) -> tuple[list[Variant], int]:
    """The variants, each with its built kernel, and the boots a round runs at once.

    The tree is put back as it was (commit, series, configuration) and the active tree
    stays the active one, whatever happens.
    """
    measured = variants(settings, options.series, options.per_patch)
    jobs = boot_jobs(options.jobs, options.accel, len(measured))  # refused before any build
    with composing(settings, kernels, tree=options.tree, base=options.base,
                   tarball=options.tarball, runner=runner, progress=progress,
                   wait=options.wait, purpose="ci") as source:
        for variant in measured:
            label = variant.series.name if variant.series else "base"
            progress.step(f"{variant.role} {variant.patch_index}: {label}")
            variant.kernel = source.kernel(variant.series)
    say_jobs(progress, jobs)
    return measured, jobs


def check_rounds(options: CiOptions) -> None:
    check_cache_model(options)
    if options.rounds is not None and options.rounds < 2:
        raise InputError(f"--rounds {options.rounds}: at least 2 boots per kernel are needed",
                         hint="use --rounds auto, or 4 or more rounds")


def new_ci_id() -> str:
    return f"ci-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def announce(progress: Progress, ci_id: str, what: str, settings: Settings,
             cache: bool = True) -> None:
    """Name the run and say once, in full, where its boots (and kernels) go: the lines
    after it name paths by their last two parts (``host.progress``), so that a CI log
    fits 80 columns. The report's files are named at the end (``report_gate``)."""
    progress.step(f"run {ci_id}: {what}")
    progress.place("boots, a run directory each", settings.runs_dir)
    if cache:
        progress.place("kernels, trees, build logs", settings.cache_dir)


def run_ci(settings: Settings, options: CiOptions, runner: Runner = default_runner,
           progress: Progress | None = None, kernels: KernelSource | None = None,
           bench: BenchFn = run_bench) -> CiResult:
    """Build every variant, measure them in paired rounds until decided, gate.

    ``kernels`` composes the variants (default: a ``Composer`` on the tree the options
    select) and ``bench`` boots one (default ``run_bench``): the seams a fast test fakes.
    """
    progress = progress or Silent()
    check_rounds(options)
    ci_id = new_ci_id()
    announce(progress, ci_id, options.series or "A/A, no series", settings)
    measured, jobs = compose(settings, options, runner, progress, kernels)
    m = Measurement(settings, options, measured, runner, progress, ci_id, bench=bench,
                    jobs=jobs)
    comparisons, df, stop = measure_until_decided(m)
    progress.step(f"measured {len(measured)} kernels x {m.rounds} boots in "
                  f"{m.boot_seconds:.0f} s ({stop})")
    return conclude(settings, options, m, comparisons, df, stop)


def conclude(settings: Settings, options: CiOptions, m: Measurement, comparisons: pd.DataFrame,
              df: pd.DataFrame, stop: str) -> CiResult:
    """The answer, the per-patch steps, the history entry and the files CI keeps."""
    baseline, candidate = m.variants[0], m.variants[-1]
    answer = gate_exit(comparisons)
    failing = comparisons[comparisons["verdict"].isin([Verdict.REGRESSED, Verdict.FAILED])
                          & (comparisons["gated"] | (comparisons["verdict"] == Verdict.FAILED))]
    regressed = sorted({f"{r.benchmark} {r.params} {r.metric}: {r.verdict}"
                        for r in failing.itertuples()})
    per_patch = None
    if options.per_patch:
        per_patch = per_patch_steps(df, judgement=options.judgement)
    out = options.out
    hist = None
    if options.record:
        history.record(settings.runs_dir / history.HISTORY_FILE, candidate.run_ids, note=m.ci_id)
        hist = history.load_history(settings.runs_dir / history.HISTORY_FILE, settings.runs_dir,
                                    skip_bad=True)
    explanation, problem = explain(settings, options, m, comparisons)
    code = EXIT_CODES[answer]
    if answer is Verdict.UNDECIDED and options.accept_undecided:
        code = EXIT_OK
    line = verdict_line(answer, comparisons, options, m.rounds, code)
    report = write_report(df, out, baseline=baseline.run_ids, candidate=candidate.run_ids,
                          judgement=options.judgement, history=hist,
                          comparisons=comparisons, explanation=explanation, verdict=line,
                          profile_problem=problem)
    junit_path = write_junit(comparisons, out / "junit.xml", suite_name=f"watchbench {m.ci_id}",
                             accept_undecided=options.accept_undecided)
    summary = out / "summary.md"  # write_report's, the verdict first
    return CiResult(code, answer, comparisons, regressed, m.rounds, stop, report, junit_path,
                    summary, per_patch, m.ci_id, line, explanation, problem)


def explain(settings: Settings, options: CiOptions, m: Measurement,
            comparisons: pd.DataFrame) -> tuple[Explanation | None, str]:
    """Profile the ends (every variant with --per-patch) for the metrics to explain. The
    verdict stands whatever happens here; a profile that fails is said, not hidden."""
    moved = to_explain(comparisons, options.profile)
    chain = [v for v in (m.variants if options.per_patch else [m.variants[0], m.variants[-1]])
             if v.kernel is not None]
    kernels = [(v.patch_index, v.patch_subject, v.kernel) for v in chain]
    if moved.empty or len(kernels) < 2:
        return None, ""
    profiled = None
    if options.cache_model is CacheModel.ON:  # the misses per symbol beside the instructions
        settings = modelled(settings)
        # every gate boot was profiled so: each kernel's last one is read, not booted again
        profiled = [settings.runs_dir / v.run_ids[-1] if v.run_ids else None for v in chain]
    try:
        return explain_gate(settings, options.suite, kernels, moved, m.bench, m.runner,
                            m.progress, profiled), ""
    except WatchbenchError as exc:
        m.progress.step(f"profile failed: {str(exc).splitlines()[0]}")
        return None, f"The profile could not be taken: {exc}"


def verdict_line(answer: Verdict, comparisons: pd.DataFrame, options: CiOptions, rounds: int,
                 code: int) -> str:
    """One sentence: the answer, how many gated metrics, and the alpha that holds."""
    gated = comparisons[comparisons["gated"]]
    family = len(gated)
    counts = gated["verdict"].value_counts()
    words = {Verdict.UNCHANGED: "OK", Verdict.REGRESSED: "REGRESSED",
             Verdict.FAILED: "BENCHMARK BROKEN ON THE CANDIDATE",
             Verdict.UNDECIDED: "UNDECIDED"}
    tally = ", ".join(f"{counts[v]} {v}" for v in Verdict if v in counts)
    failed = int((comparisons["verdict"] == Verdict.FAILED).sum())
    if failed and not counts.get(Verdict.FAILED, 0):
        tally += f"; {failed} failed (not gated metrics, same broken benchmark)"
    note = " (accepted: --accept-undecided)" if answer is Verdict.UNDECIDED and code == 0 else ""
    model = ", with the cache model's est_cycles_per_op (a model)" \
        if options.cache_model is CacheModel.ON else ""
    return (f"{words[answer]}{note} (exit {code}): {family} gated metrics ({tally}); "
            f"threshold {options.judgement.threshold:.0%}, family-wise alpha "
            f"{options.judgement.alpha:g} "
            f"(Bonferroni over the gated metrics and the looks), {rounds} paired rounds, "
            f"{options.accel}{model}")
