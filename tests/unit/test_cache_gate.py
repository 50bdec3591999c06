"""The cache model in the gate (issue 32, deliverable 3): ``ci --cache-model`` profiles
every gate boot with the model and gates each profiled case's ``est_cycles_per_op`` in
the same family as the measured metrics. Over real format-2 boots
(tests/data/insns/profile-ci-v2) for the rows, and tests.fakes.FakeBench for the flow."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes import FakeBench, FakeKernels
from tests.unit.test_shard import _edit, _machine, _shards
from watchbench.cli.regressions import gate
from watchbench.errors import InputError
from watchbench.flows.ci import CiOptions, CiResult, check_cache_model, run_ci
from watchbench.flows.shard import DESIGN, SHARD_FILE, run_merge
from watchbench.host.progress import Silent
from watchbench.kernel.symbols import SymbolMap
from watchbench.report.profile import diff_lines, diff_markdown, fmt_model_change
from watchbench.results.profile import (
    MODEL_METRIC,
    MODEL_SOURCE,
    MODEL_UNIT,
    PROFILE_FILE,
    cases,
    profile_table,
    read_insns,
    read_records,
    write_profile,
)
from watchbench.results.store import ingest_run, load_runs
from watchbench.settings import Settings
from watchbench.stats.compare import compare_frames
from watchbench.stats.decision import Verdict
from watchbench.stats.profilediff import profile_diff
from watchbench.suite.definition import load_suite
from watchbench.suite.profile import OURS
from watchbench.vm.cachemodel import CacheModel

ROOT = Path(__file__).resolve().parents[2]
KERNEL_V2 = ROOT / "tests" / "data" / "insns" / "profile-ci-v2"
SERIES = str(ROOT / "tests" / "data" / "patches" / "cache-miss-post")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings(), cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


def _missing(kernel, benchmark) -> float:
    """One more LL (and D1) miss per op of kernel-post on the fixture's kernels."""
    return 1.0 if benchmark == "kernel-post" and kernel.series.endswith("cache-miss-post") \
        else 0.0


def _options(tmp_path: Path, series: str = "", **kw) -> CiOptions:
    return CiOptions(series=series, out=tmp_path / "reports", **{"jobs": 1, **kw})


# --- the rows ----------------------------------------------------------------------------


def _recorded_run(runs: Path, model: bool = True) -> Path:
    """The first recorded format-2 boot as run_bench leaves it: raw records, manifest and
    its profile (with the model, or with the model's columns dropped as off)."""
    source = sorted(p for p in KERNEL_V2.iterdir() if p.is_dir())[0]
    run = runs / source.name
    shutil.copytree(source, run)
    suite = load_suite(ROOT, json.loads((run / "manifest.json").read_text())["suite"])
    programs = [(r.name, read_records(run / "raw" / f"{r.name}.jsonl")) for r in suite.runs
                if r.kind in OURS]
    insns = run / "raw" / "insns.txt"
    insns.write_bytes(gzip.decompress((run / "raw" / "insns.txt.gz").read_bytes()))
    table = profile_table(read_insns(insns), programs, SymbolMap.load(KERNEL_V2 / "System.map"),
                          run.name, insns)
    if not model:
        table = table.assign(cost_model="")
        for column in ("dref_per_op", "i1_miss_per_op", "d1_miss_per_op", "ll_miss_per_op",
                       "est_cycles_per_op", "case_est_cycles_per_op"):
            table[column] = float("nan")
    write_profile(run, table)
    return run


def test_a_boot_profiled_with_the_model_has_its_estimate_as_a_gated_row(tmp_path):
    """Per profiled case one row: est_cycles_per_op, primary, lower is better, its
    source, unit and raw file saying it is the model's, its params as the records';
    the value is the profile's per-case estimate."""
    run = _recorded_run(tmp_path / "runs")
    ingest_run(run)
    df = load_runs(tmp_path / "runs")
    rows = df[df["metric"] == MODEL_METRIC]
    expected = cases(pd.read_parquet(run / PROFILE_FILE))
    assert len(rows) == len(expected) == 11
    assert set(rows["source"]) == {MODEL_SOURCE} and set(rows["unit"]) == {MODEL_UNIT}
    assert "model" in MODEL_UNIT and set(rows["raw_file"]) == {PROFILE_FILE}
    assert rows["primary"].all() and set(rows["direction"]) == {"lower"}
    assert set(rows["accel"]) == {"icount"}  # the boot's provenance, like every row's
    got = rows.set_index(["benchmark", "params"])["value"].astype(float)
    want = expected.set_index(["benchmark", "params"])["est_cycles_per_op"]
    assert got.sort_index().to_numpy() == pytest.approx(want.sort_index().to_numpy())
    post = rows[(rows["benchmark"] == "kernel-post") & rows["params"].str.contains("case=free")]
    measured = df[(df["benchmark"] == "kernel-post") & (df["params"] == post["params"].iloc[0])
                  & (df["metric"] != MODEL_METRIC)]
    assert post["param_case"].iloc[0] == measured["param_case"].iloc[0] == "free"
    # one primary per record still: the measured record keeps its own
    assert measured["primary"].sum() == measured["iteration"].nunique()


def test_a_profile_without_the_model_or_no_profile_adds_no_row(tmp_path):
    run = _recorded_run(tmp_path / "runs", model=False)
    ingest_run(run)
    assert MODEL_METRIC not in set(load_runs(tmp_path / "runs")["metric"].astype(str))
    (run / PROFILE_FILE).unlink()
    ingest_run(run)  # no profile at all: the records' rows only
    assert MODEL_METRIC not in set(load_runs(tmp_path / "runs")["metric"].astype(str))


# --- the decision --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def missed(tmp_path_factory) -> tuple[Settings, CiResult, FakeBench]:
    """The gate of the cache-miss-post series with the model on (FakeBench seed 3), run
    once for the tests that read its result, runs and boots: settings, result, bench."""
    tmp_path = tmp_path_factory.mktemp("missed")
    settings = replace(Settings(), cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")
    bench = FakeBench(misses=_missing, seed=3)
    result = run_ci(settings, _options(tmp_path, SERIES, cache_model=CacheModel.ON),
                    kernels=FakeKernels(tmp_path), bench=bench)
    return settings, result, bench


def test_the_estimate_joins_the_family_and_a_miss_per_post_regresses(missed):
    """With the model the fixture's extra miss is regressed on est_cycles_per_op of
    kernel-post while its measured metric is unchanged; the family counts both metrics
    of both cases, so each is decided at alpha / 4."""
    _, result, bench = missed
    rows = result.comparisons.set_index(["benchmark", "metric"])
    assert result.exit_code == 1 and result.answer is Verdict.REGRESSED
    assert rows.loc[("kernel-post", MODEL_METRIC), "verdict"] == Verdict.REGRESSED
    assert rows.loc[("kernel-post", "ns_per_record"), "verdict"] == Verdict.UNCHANGED
    assert rows.loc[("keyctl-post", MODEL_METRIC), "verdict"] == Verdict.UNCHANGED
    assert int(result.comparisons["gated"].sum()) == 4
    assert result.comparisons.attrs["family"] == 4
    assert result.regressed == [f"kernel-post case=free, queues=1 {MODEL_METRIC}: regressed"]
    assert "est_cycles_per_op (a model)" in result.line
    assert all(b["profiled"] and b["model"] for b in bench.boots)  # every gate boot
    assert len(bench.boots) == 8


def test_without_the_model_nothing_changes_and_the_miss_is_not_seen(settings, tmp_path):
    """Off (the default): the boots are called as before (no profile, the settings as
    given), no estimate is in the results, and the same kernels pass."""
    calls = []
    bench = FakeBench(misses=_missing, seed=3)

    def recorded(given, *args, **kw):
        calls.append((given, kw))
        return bench(given, *args, **kw)

    options = _options(tmp_path, SERIES)
    assert options.cache_model is CacheModel.OFF
    result = run_ci(settings, options, kernels=FakeKernels(tmp_path), bench=recorded)
    assert result.exit_code == 0
    assert MODEL_METRIC not in set(result.comparisons["metric"])
    assert all(given is settings and "profile" not in kw for given, kw in calls)
    assert "cache model" not in result.line


def test_a_direct_comparison_of_model_boots_decides_the_estimate_too(settings, tmp_path):
    """``compare_frames`` (./wb compare) over model boots: the estimate is gated there as
    in the gate, one family with the measured metrics."""
    bench = FakeBench(misses=_missing, seed=4)
    result = run_ci(settings, _options(tmp_path, SERIES, cache_model=CacheModel.ON,
                                       rounds=4), kernels=FakeKernels(tmp_path), bench=bench)
    base = [b["run_id"] for b in bench.boots if b["ci_role"] == "baseline"]
    cand = [b["run_id"] for b in bench.boots if b["ci_role"] == "candidate"]
    again = compare_frames(load_runs(settings.runs_dir, base + cand), base, cand)
    assert again.attrs["family"] == 4
    assert set(again.loc[again["metric"] == MODEL_METRIC, "benchmark"]) == {"kernel-post",
                                                                           "keyctl-post"}
    assert result.exit_code == 1


# --- the flag, the setting, the refusals -----------------------------------------------------


def test_the_setting_turns_it_on_and_the_flag_or_setting_needs_icount(settings, tmp_path):
    """auto, the default, is the model wherever it runs: on under icount, off under tcg
    and kvm (no refusal); on is refused where it cannot run; off is off everywhere."""
    assert settings.ci.cache_model == "auto"
    assert CiOptions.from_settings(settings, "").cache_model is CacheModel.ON
    for accel in ("tcg", "kvm"):
        assert CiOptions.from_settings(settings, "", accel=accel).cache_model \
            is CacheModel.OFF
    on = replace(settings, ci=replace(settings.ci, cache_model="on"))
    off = replace(settings, ci=replace(settings.ci, cache_model="off"))
    assert CiOptions.from_settings(on, "").cache_model is CacheModel.ON
    assert CiOptions.from_settings(off, "").cache_model is CacheModel.OFF
    assert CiOptions.from_settings(off, "", cache_model="on").cache_model is CacheModel.ON
    assert CiOptions.from_settings(settings, "", cache_model="off").cache_model \
        is CacheModel.OFF
    with pytest.raises(InputError, match="under icount only"):
        CiOptions.from_settings(on, "", accel="tcg")
    with pytest.raises(InputError, match="under icount only"):
        check_cache_model(_options(tmp_path, cache_model=CacheModel.ON, accel="tcg"))
    check_cache_model(_options(tmp_path, cache_model=CacheModel.OFF, accel="tcg"))
    with pytest.raises(InputError, match="under icount only"):
        run_ci(settings, _options(tmp_path, cache_model=CacheModel.ON, accel="kvm"),
               kernels=FakeKernels(tmp_path), bench=FakeBench())


def test_shards_record_it_and_a_merge_of_differing_shards_is_refused(tmp_path):
    assert "cache_model" in DESIGN
    dirs = _shards(tmp_path, rounds=4)
    record = json.loads((dirs[0] / SHARD_FILE).read_text())
    assert record["design"]["cache_model"] == "off"
    _edit(dirs[1], lambda r: r["design"].update(cache_model="on"))
    with pytest.raises(InputError, match="design.cache_model 'on', not 'off'"):
        run_merge(_machine(tmp_path, "merge"), dirs, tmp_path / "m")
    for shard in dirs:  # shards written before the key existed: read as off
        _edit(shard, lambda r: r["design"].pop("cache_model", None))
    assert run_merge(_machine(tmp_path, "m2"), dirs, tmp_path / "m2").exit_code == 0
    _edit(dirs[0], lambda r: r["design"].update(cache_model="maybe"))
    with pytest.raises(Exception, match="design.cache_model 'maybe' is not one of auto, off, on"):
        run_merge(_machine(tmp_path, "m3"), dirs, tmp_path / "m3")


# --- the explanation -----------------------------------------------------------------------


def test_the_explanation_names_the_function_that_takes_the_misses(settings, tmp_path,
                                                                    capsys):
    """The explanation reads the model's profiles of the gate's own boots (no boot more);
    the terminal, within 80 columns, says where the misses went beside the (unchanged)
    instructions, and so does summary.md."""
    bench = FakeBench(misses=_missing, seed=3)
    code = gate(settings, _options(tmp_path, SERIES, cache_model=CacheModel.ON),
                kernels=FakeKernels(tmp_path), bench=bench, progress=Silent())
    out = capsys.readouterr().out
    assert code == 1
    # every gate boot was profiled with the model: the explanation reads the last boot of
    # each kernel instead of booting them again
    assert bench.profiles == [] and all(b["model"] for b in bench.boots)
    assert "where the instructions and misses went" in out
    assert "    post_one_notification +110 est. cycles/op; misses/op L1 +1, LL +1" \
        in out.splitlines()
    assert "  180 -> 180 instr/op in all: no function changed" in out.splitlines()
    assert [line for line in out.splitlines() if len(line) > 80
            and not line.startswith(("report:", "junit:", "summary:"))] == []  # tmp paths
    noise = out[out.index("noise of the gated metrics"):].splitlines()
    assert "metric" in noise[2] and any(MODEL_METRIC in line for line in noise)
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "`post_one_notification +110 est. cycles/op; misses/op L1 +1, LL +1` (model)" \
        in summary
    assert "where the misses went (model)" in (tmp_path / "reports" / "index.html").read_text()


def test_a_move_in_misses_below_the_noise_of_the_case_is_no_change(tmp_path):
    """Between kernels the layout shuffles a few misses: a symbol's estimate moving by
    less than 1 % of its case's estimate is no change; an A/A diff has none."""
    base = FakeBench().profile(FakeKernels(tmp_path).kernel(None), "a", None, model=True)
    diff = profile_diff(base, base)
    assert not diff["model_changed"].any()
    assert diff_lines(diff) == ["2 profiled case(s): no function changed"]
    shuffled = base.copy()
    one = shuffled["symbol"] == "lookup_user_key"
    shuffled.loc[one, "est_cycles_per_op"] += 1.0  # of 200-odd: under 1 %
    assert not profile_diff(base, shuffled)["model_changed"].any()
    shuffled.loc[one, "est_cycles_per_op"] += 20.0
    moved = profile_diff(base, shuffled)
    assert moved.loc[moved["model_changed"], "symbol"].unique().tolist() == ["lookup_user_key"]
    plain = FakeBench().profile(FakeKernels(tmp_path).kernel(None), "a", None)
    assert not profile_diff(plain, plain)["model_changed"].any()  # no model: never
    assert fmt_model_change("f", -0.5, 0, -5) == "f -5 est. cycles/op; misses/op L1 -0.5, LL +0"
    moved_row = pd.DataFrame([{"benchmark": "kernel-post", "params": "case=free, queues=1",
                               "metric": MODEL_METRIC, "verdict": "regressed"}])
    assert "no function changed its instructions" in diff_markdown(moved, moved_row)


def test_the_report_leads_each_case_with_its_measured_metric(missed):
    """In the report's case tables the estimate is a further column, the measured
    primary metric stays the case's value."""
    from watchbench.report.cases import case_tables
    from watchbench.stats.summary import summarize

    settings, _, bench = missed
    df = load_runs(settings.runs_dir, [bench.boots[0]["run_id"]])
    tables = case_tables(summarize(df), df, {})
    frame, _ = tables["kernel-post"]
    assert "ns_per_record ↓" in frame.columns
    assert f"{MODEL_METRIC} ({MODEL_UNIT})" in frame.columns


def test_a_long_model_line_puts_the_misses_on_a_line_of_their_own(tmp_path):
    base = FakeBench().profile(FakeKernels(tmp_path).kernel(None), "a", None, model=True)
    cand = base.copy()
    one = cand["symbol"] == "post_one_notification"
    for column, more in (("d1_miss_per_op", 1.0271), ("ll_miss_per_op", 1.0271),
                         ("est_cycles_per_op", 113.0)):
        cand.loc[one, column] += more
    cand["case_est_cycles_per_op"] += 113.0
    lines = diff_lines(profile_diff(base, cand), width=60)
    assert lines[1] == "  model: 202 -> 315 est. cycles/op;"
    assert lines[2] == "    misses/op L1 0.2 -> 1.23, LL 0.2 -> 1.23"
    assert max(map(len, lines)) <= 60
