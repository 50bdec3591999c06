"""`inv ci`: baseline vs candidate, booted K times interleaved, one verdict, one exit code.

Exit codes: 0 unchanged or improved, 1 a significant regression beyond the threshold,
2 an infrastructure failure (patch, config, build, boot, conformance). The baseline is
the base plus our in-kernel benchmark series; the candidate adds the series under test,
so the in-kernel benchmark measures both.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from watchbench import commands, patching
from watchbench.benchrun import run_bench
from watchbench.build import Kernel, build
from watchbench.configure import configure, fragments_for
from watchbench.errors import InputError
from watchbench.progress import Progress
from watchbench.runner import Runner, default_runner
from watchbench.series import Series, load_many
from watchbench.settings import Settings
from watchbench.tree import Tree

EXIT_OK, EXIT_REGRESSED, EXIT_INFRA = 0, 1, 2


@dataclass
class CiOptions:
    series: str
    rounds: int = 3
    accel: str = "icount"
    suite: str = "ci"
    per_patch: bool = False
    threshold: float = 0.05
    alpha: float = 0.01
    record: bool = False
    out: Path = Path("reports")
    tree: str | None = None
    base: str | None = None
    tarball: str | None = None


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
    comparisons: pd.DataFrame
    regressed: list[str]
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


def run_ci(settings: Settings, options: CiOptions, runner: Runner = default_runner,
           progress: Progress | None = None) -> CiResult:
    """Build every variant, measure them round-robin, compare candidate with baseline."""
    from watchbench import history, junit
    from watchbench.report import compare_markdown, write_report
    from watchbench.results import load_runs
    from watchbench.stats import compare_frames

    progress = progress or Progress("ci")
    if options.rounds < 2:
        raise InputError(f"--rounds {options.rounds}: at least 2 boots per kernel are needed",
                         hint="3 boots per kernel detect a 5 % change under icount")
    ci_id = f"ci-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    tree = commands.fetch(settings, options.tree, options.base, options.tarball, runner)
    variants = _variants(settings, options.series, options.per_patch)
    for variant in variants:
        variant.kernel = build_variant(settings, tree, variant, runner, progress)
    patching.reset(tree, runner)
    start = time.monotonic()
    for round_index in range(options.rounds):
        for variant in variants:
            progress.step(f"round {round_index + 1}/{options.rounds}: {variant.role}"
                          + (f" {variant.patch_index}" if variant.role == "patch" else ""))
            extra = {"ci_id": ci_id, "ci_role": variant.role, "ci_round": round_index,
                     "patch_index": variant.patch_index, "patch_subject": variant.patch_subject}
            run_dir = run_bench(settings, options.suite, options.accel, label=variant.role,
                                kernel=variant.kernel, runner=runner, progress=progress,
                                extra=extra)
            variant.run_ids.append(run_dir.name)
    progress.step(f"measured {len(variants)} kernels x {options.rounds} boots in "
                  f"{time.monotonic() - start:.0f} s")

    baseline, candidate = variants[0], variants[-1]
    all_ids = [i for v in variants for i in v.run_ids]
    df = load_runs(settings.runs_dir, run_ids=all_ids)
    comparisons = compare_frames(df, baseline.run_ids, candidate.run_ids,
                                 threshold=options.threshold, alpha=options.alpha)
    regressed_rows = comparisons[comparisons["verdict"] == "regressed"]
    regressed = sorted({f"{r.benchmark} {r.params} {r.metric}" for r in regressed_rows.itertuples()})
    per_patch = None
    if options.per_patch:
        from watchbench.stats import per_patch_steps

        per_patch = per_patch_steps(df, threshold=options.threshold, alpha=options.alpha)
    out = options.out
    hist = None
    if options.record:
        history.record(settings.runs_dir / "history.jsonl", candidate.run_ids, note=ci_id)
        hist = history.load_history(settings.runs_dir / "history.jsonl", settings.runs_dir,
                                    skip_bad=True)
    report = write_report(df, out, baseline=baseline.run_ids, candidate=candidate.run_ids,
                          threshold=options.threshold, alpha=options.alpha, history=hist)
    junit_path = junit.write_junit(comparisons, out / "junit.xml", suite_name=f"watchbench {ci_id}")
    summary = out / "summary.md"  # written by write_report; the verdict goes first
    body = summary.read_text() if summary.exists() else compare_markdown(comparisons)
    summary.write_text(f"## watchbench: {_verdict_line(regressed, options)}\n\n{body}")
    return CiResult(EXIT_REGRESSED if regressed else EXIT_OK, comparisons, regressed, report,
                    junit_path, summary, per_patch, ci_id)


def _verdict_line(regressed: list[str], options: CiOptions) -> str:
    if not regressed:
        return (f"no regression beyond {options.threshold:.0%} (alpha {options.alpha:g}, "
                f"{options.rounds} boots per kernel, {options.accel})")
    return (f"REGRESSED: {len(regressed)} metric(s) beyond {options.threshold:.0%} "
            f"(alpha {options.alpha:g}, {options.rounds} boots per kernel, {options.accel})")


def gate(settings: Settings, options: CiOptions) -> int:
    """run_ci for the CLI: print the verdict and map every failure to an exit code."""
    from watchbench.errors import WatchbenchError
    from watchbench.report import compare_table

    try:
        result = run_ci(settings, options)
    except WatchbenchError as exc:
        print(f"watchbench ci: INFRASTRUCTURE FAILURE (exit {EXIT_INFRA}): {exc}")
        return EXIT_INFRA
    print(compare_table(result.comparisons))
    if result.per_patch is not None:
        for line in attribute(result.per_patch, result.regressed):
            print(line)
    print(f"\nreport: {result.report}\njunit:  {result.junit}\nsummary: {result.summary}")
    head = "REGRESSED" if result.regressed else "OK"
    print(f"watchbench ci: {head} (exit {result.exit_code})"
          + "".join(f"\n  regressed: {r}" for r in result.regressed))
    return result.exit_code


def attribute(steps: pd.DataFrame, regressed: list[str]) -> list[str]:
    """'patch N (subject): <metric> regressed +x % vs the previous patch' for every step that
    moved a metric; the metrics the gate found regressed come first."""
    from watchbench.perpatch import moved_by

    moved = moved_by(steps) if len(steps) else steps
    lines = []
    for row in moved.itertuples():
        key = f"{row.benchmark} {row.params} {row.metric}"
        lines.append((key not in regressed,
                      f"  patch {row.patch_index} ({row.patch_subject}): {key} {row.step_verdict} "
                      f"{row.step_change:+.1%} vs the previous patch"))
    return [text for _, text in sorted(lines, key=lambda item: item[0])]
