"""`inv ci`: baseline vs candidate, booted in paired rounds until decided, one exit code.

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
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from watchbench import commands, patching
from watchbench.benchrun import run_bench
from watchbench.build import Kernel, build
from watchbench.configure import configure, fragments_for
from watchbench.decision import DEFAULT_NOISE_FLOOR, Looks, Verdict
from watchbench.errors import InputError
from watchbench.progress import Progress
from watchbench.runner import Runner, default_runner
from watchbench.series import Series, load_many
from watchbench.settings import Settings
from watchbench.tree import Tree

EXIT_OK, EXIT_REGRESSED, EXIT_INFRA, EXIT_UNDECIDED = 0, 1, 2, 3
EXIT_CODES = {Verdict.UNCHANGED: EXIT_OK, Verdict.REGRESSED: EXIT_REGRESSED,
              Verdict.FAILED: EXIT_REGRESSED, Verdict.UNDECIDED: EXIT_UNDECIDED}


@dataclass
class CiOptions:
    """``rounds`` None is ``--rounds auto``: looks after ``min_rounds``, then every
    ``round_step`` rounds up to ``max_rounds`` or ``budget_s`` seconds of boots."""

    series: str
    rounds: int | None = None
    min_rounds: int = 4
    round_step: int = 2
    max_rounds: int = 12
    budget_s: float = 1200.0
    accel: str = "icount"
    suite: str = "ci"
    per_patch: bool = False
    threshold: float = 0.05
    alpha: float = 0.01
    noise_floor: float = DEFAULT_NOISE_FLOOR
    accept_undecided: bool = False
    record: bool = False
    out: Path = Path("reports")
    tree: str | None = None
    base: str | None = None
    tarball: str | None = None

    def looks(self) -> Looks:
        if self.rounds is not None:
            return Looks.fixed(self.rounds, self.alpha)
        return Looks.schedule(self.min_rounds, self.round_step, self.max_rounds, self.alpha)


@dataclass
class Variant:
    """One kernel to measure: the baseline, a prefix of the series, or the whole candidate."""

    role: str  # baseline | patch | candidate
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


def _variants(settings: Settings, series_names: str, per_patch: bool) -> list[Variant]:
    """Baseline, [each prefix of the series,] candidate. No series: an A/A run, where the
    candidate is the baseline kernel itself (measures the false-alarm rate)."""
    bench = load_many(settings.patches_dir, settings.bench_series) if settings.bench_series else None
    if not series_names.strip():
        return [Variant("baseline", 0, "", bench), Variant("candidate", 0, "A/A: same kernel", bench)]
    series = load_many(settings.patches_dir, series_names)
    base_patches = bench.patches if bench else ()
    base_name = bench.name if bench else ""

    def on_base(count: int) -> Series:
        name = "+".join(n for n in (base_name, series.name if count else "") if n)
        if count and count < len(series.patches):
            name += f"@{count}"
        return Series(name, series.directory, (*base_patches, *series.patches[:count]))

    variants = [Variant("baseline", 0, "", on_base(0) if base_patches else None)]
    if per_patch:
        variants += [Variant("patch", i, series.patches[i - 1].subject, on_base(i))
                     for i in range(1, len(series.patches))]
    variants.append(Variant("candidate", len(series.patches), series.patches[-1].subject,
                            on_base(len(series.patches))))
    return variants


def build_variant(settings: Settings, tree: Tree, variant: Variant, runner: Runner,
                  progress: Progress) -> Kernel:
    """Apply the variant's patches on the base, configure, build (cached by content)."""
    tree = patching.reset(tree, runner)
    if variant.series is not None:
        tree = patching.apply(tree, variant.series, runner)
    configure(tree, settings, fragments_for(settings, tree), runner)
    label = variant.series.name if variant.series else "base"
    progress.step(f"{variant.role} {variant.patch_index}: {label}")
    return build(settings, tree, runner, progress)


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
        keys = ["benchmark", "params", "metric"]
        done = locked[locked["verdict"] != Verdict.UNDECIDED].set_index(keys)
        fresh = look.set_index(keys)
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

    def run_round(self, total: str) -> None:
        start = time.monotonic()
        for position, variant in enumerate(round_order(self.variants, self.rounds)):
            self.progress.step(f"round {self.rounds + 1}/{total}: {variant.role}"
                               + (f" {variant.patch_index}" if variant.role == "patch" else ""))
            extra = {"ci_id": self.ci_id, "ci_role": variant.role, "ci_round": self.rounds,
                     "ci_position": position, "patch_index": variant.patch_index,
                     "patch_subject": variant.patch_subject}
            run_dir = run_bench(self.settings, self.options.suite, self.options.accel,
                                label=variant.role, kernel=variant.kernel, runner=self.runner,
                                progress=self.progress, extra=extra)
            variant.run_ids.append(run_dir.name)
        self.rounds += 1
        self.boot_seconds += time.monotonic() - start

    def frame(self) -> pd.DataFrame:
        from watchbench.results import load_runs

        return load_runs(self.settings.runs_dir,
                         run_ids=[i for v in self.variants for i in v.run_ids])


def measure_until_decided(m: Measurement) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Rounds and looks: after each look's rounds, decide; stop when every gated metric
    is decided, when the answer can no longer change (a failure or regression is final),
    at the last look or when the next look would exceed the time budget."""
    from watchbench.stats import compare_frames, gate_exit

    options, looks = m.options, m.options.looks()
    total = str(looks.rounds[-1]) if options.rounds is not None else f"<={looks.rounds[-1]}"
    baseline, candidate = m.variants[0], m.variants[-1]
    decisions = None
    for k, target in enumerate(looks.rounds):
        while m.rounds < target:
            m.run_round(total)
        df = m.frame()
        look = compare_frames(df, baseline.run_ids, candidate.run_ids,
                              threshold=options.threshold, alpha=options.alpha,
                              spend=looks.spend(k), noise_floor=options.noise_floor)
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
        if k + 1 < len(looks.rounds):
            per_round = m.boot_seconds / max(m.rounds, 1)
            need = per_round * (looks.rounds[k + 1] - m.rounds)
            if m.boot_seconds + need > options.budget_s:
                return decisions, df, (f"time budget {options.budget_s:.0f} s reached after "
                                       f"{m.rounds} rounds")
    return decisions, df, f"last look ({m.rounds} rounds)"


def run_ci(settings: Settings, options: CiOptions, runner: Runner = default_runner,
           progress: Progress | None = None) -> CiResult:
    """Build every variant, measure them in paired rounds until decided, gate."""
    from watchbench import history, junit
    from watchbench.report import compare_markdown, write_report
    from watchbench.stats import gate_exit

    progress = progress or Progress("ci")
    if options.rounds is not None and options.rounds < 2:
        raise InputError(f"--rounds {options.rounds}: at least 2 boots per kernel are needed",
                         hint="use --rounds auto, or 4 or more rounds")
    ci_id = f"ci-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    tree = commands.fetch(settings, options.tree, options.base, options.tarball, runner)
    variants = _variants(settings, options.series, options.per_patch)
    for variant in variants:
        variant.kernel = build_variant(settings, tree, variant, runner, progress)
    patching.reset(tree, runner)
    m = Measurement(settings, options, variants, runner, progress, ci_id)
    comparisons, df, stop = measure_until_decided(m)
    progress.step(f"measured {len(variants)} kernels x {m.rounds} boots in "
                  f"{m.boot_seconds:.0f} s ({stop})")
    baseline, candidate = variants[0], variants[-1]
    answer = gate_exit(comparisons)
    failing = comparisons[comparisons["verdict"].isin([Verdict.REGRESSED, Verdict.FAILED])
                          & (comparisons["gated"] | (comparisons["verdict"] == Verdict.FAILED))]
    regressed = sorted({f"{r.benchmark} {r.params} {r.metric}: {r.verdict}"
                        for r in failing.itertuples()})
    per_patch = None
    if options.per_patch:
        from watchbench.perpatch import per_patch_steps

        per_patch = per_patch_steps(df, threshold=options.threshold, alpha=options.alpha,
                                    noise_floor=options.noise_floor)
    out = options.out
    hist = None
    if options.record:
        history.record(settings.runs_dir / "history.jsonl", candidate.run_ids, note=ci_id)
        hist = history.load_history(settings.runs_dir / "history.jsonl", settings.runs_dir,
                                    skip_bad=True)
    report = write_report(df, out, baseline=baseline.run_ids, candidate=candidate.run_ids,
                          threshold=options.threshold, alpha=options.alpha, history=hist,
                          comparisons=comparisons)
    junit_path = junit.write_junit(comparisons, out / "junit.xml", suite_name=f"watchbench {ci_id}",
                                   accept_undecided=options.accept_undecided)
    summary = out / "summary.md"  # written by write_report; the verdict goes first
    body = summary.read_text() if summary.exists() else compare_markdown(comparisons)
    code = EXIT_CODES[answer]
    if answer is Verdict.UNDECIDED and options.accept_undecided:
        code = EXIT_OK
    line = verdict_line(answer, comparisons, options, m.rounds, code)
    summary.write_text(f"## watchbench: {line}\n\n{body}")
    return CiResult(code, answer, comparisons, regressed, m.rounds, stop, report, junit_path,
                    summary, per_patch, ci_id)


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
    return (f"{words[answer]}{note} (exit {code}): {family} gated metrics ({tally}); "
            f"threshold {options.threshold:.0%}, family-wise alpha {options.alpha:g} "
            f"(Bonferroni over the gated metrics and the looks), {rounds} paired rounds, "
            f"{options.accel}")


def gate(settings: Settings, options: CiOptions) -> int:
    """run_ci for the CLI: print the verdict and map every failure to an exit code."""
    from watchbench.errors import WatchbenchError
    from watchbench.report import compare_table, noise_table

    try:
        result = run_ci(settings, options)
    except WatchbenchError as exc:
        print(f"watchbench ci: INFRASTRUCTURE FAILURE (exit {EXIT_INFRA}): {exc}")
        return EXIT_INFRA
    print(compare_table(result.comparisons))
    print()
    print(noise_table(result.comparisons))
    if result.per_patch is not None:
        for line in attribute(result.per_patch, result.regressed):
            print(line)
    print(f"\nreport: {result.report}\njunit:  {result.junit}\nsummary: {result.summary}")
    print(f"stopped: {result.stop_reason}")
    line = "watchbench ci: " + verdict_line(result.answer, result.comparisons, options,
                                            result.rounds, result.exit_code)
    print("\n".join(textwrap.wrap(line, 79, subsequent_indent="  ")))
    for failing in result.regressed:
        print("\n".join(textwrap.wrap(failing, 79, initial_indent="  ",
                                       subsequent_indent="    ")))
    return result.exit_code


def attribute(steps: pd.DataFrame, regressed: list[str]) -> list[str]:
    """'patch N (subject): <metric> regressed +x % vs the previous patch' for every step that
    moved a metric; the metrics the gate found regressed come first."""
    from watchbench.perpatch import moved_by

    moved = moved_by(steps) if len(steps) else steps
    named = {r.rsplit(":", 1)[0] for r in regressed}
    lines = []
    for row in moved.itertuples():
        key = f"{row.benchmark} {row.params} {row.metric}"
        lines.append((key not in named,
                      f"  patch {row.patch_index} ({row.patch_subject}): {key} {row.step_verdict} "
                      f"{row.step_change:+.1%} vs the previous patch"))
    return [text for _, text in sorted(lines, key=lambda item: item[0])]
