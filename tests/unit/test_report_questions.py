"""The question-first report on a recorded real run: two icount boots of the quick suite
(tests/data/results/quick-icount, recorded from the bench kernel; the same run made live
is checked in tests/integration/test_bench_integration.py)."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from tests.chromium import console_problems, needs_chromium, screenshot, too_wide
from tests.recorded import QUICK, ingested
from watchbench.cli.measure import print_headline
from watchbench.report import write_report
from watchbench.report.headline import MAX_TERMINAL_LINES, focus_text, headline_lines
from watchbench.report.questions import (
    HEADLINES,
    SWEEPS,
    Pick,
    _choose,
    focus,
    headlines,
    sweeps,
)
from watchbench.report.text import fmt_value
from watchbench.results import ingest_run
from watchbench.settings import Settings


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return ingested(QUICK, tmp_path_factory.mktemp("quick") / "runs")


@pytest.fixture(scope="module")
def quick(quick_runs: pd.DataFrame) -> pd.DataFrame:
    """The ok rows of the newest run's kernel and accelerator: here, both boots."""
    ok = focus(quick_runs)
    assert ok["run_id"].nunique() == 2
    return ok


@pytest.fixture(scope="module")
def quick_report(quick_runs: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(quick_runs, tmp_path_factory.mktemp("quick-out"), baseline=None,
                        candidate=None)


def _boot_medians(df: pd.DataFrame, benchmark: str, metric: str, **params: str) -> np.ndarray:
    """Each boot's median of one series, picked by hand from the samples."""
    rows = df[(df["benchmark"] == benchmark) & (df["metric"] == metric)
              & (df["status"] == "ok")]
    for key, value in params.items():
        rows = rows[rows[f"param_{key}"].astype(str) == value]
    assert rows["params"].nunique() == 1, rows["params"].unique()
    return rows.groupby("run_id", observed=True)["value"].median().sort_index().to_numpy()


def test_every_headline_question_is_answered_from_the_quick_suite(quick):
    answers = {a.headline.key: a for a in headlines(quick)}
    assert set(answers) == {h.key for h in HEADLINES}
    for a in answers.values():
        assert a.figure.boots == 2 and math.isfinite(a.figure.value), a.headline.key
        assert a.figure.low <= a.figure.value <= a.figure.high, a.headline.key


def test_the_delivered_post_is_the_geometric_mean_of_its_boots_and_the_relation_is_paired(
        quick):
    post = next(a for a in headlines(quick) if a.headline.key == "post")
    stream = _boot_medians(quick, "keyctl-post", "ns_per_op", case="stream", queues="1")
    base = _boot_medians(quick, "keyctl-post", "ns_per_op", case="baseline")
    assert post.figure.value == pytest.approx(math.exp(np.log(stream).mean()))
    assert post.params["queues"] == "1" and post.params["case"] == "stream"
    assert post.relation is not None
    assert post.relation.value == pytest.approx(np.mean(stream - base))
    assert post.relation.unit == "ns"


def test_the_watchers_headline_compares_the_most_queues_with_one(quick):
    grown = next(a for a in headlines(quick) if a.headline.key == "watchers")
    two = _boot_medians(quick, "kernel-post", "ns_per_op", case="free", queues="2", len="16")
    one = _boot_medians(quick, "kernel-post", "ns_per_op", case="free", queues="1", len="16")
    assert grown.params["queues"] == "2" and grown.reference_params["queues"] == "1"
    assert grown.relation.value == pytest.approx(math.exp(np.mean(np.log(two / one))))
    assert grown.relation.unit == "×"


def test_a_question_the_runs_cannot_answer_is_left_out(quick):
    only_one_queue = quick[quick["param_queues"].astype("string").fillna("1").isin(["0", "1"])]
    keys = {a.headline.key for a in headlines(only_one_queue)}
    assert "watchers" not in keys and "post" in keys
    assert headlines(quick[quick["benchmark"] == "conformance"]) == []


def test_the_sweeps_of_the_quick_suite(quick):
    drawn = {s.sweep.key: s for s in sweeps(quick)}
    assert set(drawn) == {s.key for s in SWEEPS}
    watchers = drawn["watchers"]
    labels = {line.label: line for line in watchers.lines}
    # each case is a line (its filter is a property of the line, not a second sweep), the
    # case without watchers a single point at queues=0
    assert set(labels) == {"case=free", "case=filtered", "case=full", "case=none"}
    assert list(labels["case=free"].x) == [1.0, 2.0] and list(labels["case=none"].x) == [0.0]
    assert watchers.fixed == {"len": "16"}
    drain = {line.label: line for line in drawn["drain"].lines}
    assert list(drain["pipe=plain"].x) == [16.0, 256.0, 4096.0]
    assert (drain["pipe=plain"].low <= drain["pipe=plain"].value).all()


def test_summary_md_of_one_run_is_the_headline_only(quick_report):
    md = (quick_report.parent / "summary.md").read_text()
    assert len(md.splitlines()) <= 40
    assert "## Headline" in md and "What does one delivered post cost?" in md
    assert "## Medians" not in md and "results.csv" in md


def test_the_case_tables_have_params_as_columns_and_the_kernel_once(quick_report, quick):
    html = quick_report.read_text()
    long_name = "debian linux-source-6.12 6.12.117-1~deb12u1 + watch_queue-bench"
    cases = html[html.index('<h2 id="cases"'):html.index('<h2 id="runs"')]
    assert long_name not in cases and "K1" not in cases  # one kernel: no kernel column
    kernel_post = cases[cases.index('id="b-kernel-post"'):cases.index('id="b-keyctl-post"')]
    for header in ("case", "queues", "len", "95 % CI", "boots", "ops_per_s (op/s)"):
        assert f">{header}</th>" in kernel_post, header
    assert "In every row: queue_size=256, subtype=7." in kernel_post
    keyctl = cases[cases.index('id="b-keyctl-post"'):cases.index('id="b-overflow"')]
    assert ">other-cpu†</td>" in keyctl and "simulated round-robin" in keyctl
    assert html.count(long_name) <= 3  # the kernel list and the two "from" notes
    csv = pd.read_csv(quick_report.parent / "results.csv")
    assert {"boots", "between_cv"} <= set(csv.columns) and set(csv["boots"]) == {2}


def test_the_terminal_headline_fits_fifteen_lines_of_eighty_columns(quick):
    lines = headline_lines(headlines(quick), focus_text(quick, brief=True),
                           "/work/main/reports/index.html")
    assert len(lines) <= MAX_TERMINAL_LINES
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert lines[0].startswith("headline: watch_queue-bench on 6.12.117+, icount")
    assert any(line.strip().startswith("delivered post") and " ns " in line for line in lines)
    assert lines[-1] == "report: /work/main/reports/index.html"


@pytest.fixture(scope="module")
def quick_console(quick_report: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What ``quick_report`` says on Chromium's console as it opens: the same page at
    every width below, so opened for it once."""
    return console_problems(quick_report, tmp_path_factory.mktemp("quick-console"))


@needs_chromium
@pytest.mark.parametrize(("width", "height"), [(1400, 900), (800, 1400)])
def test_the_report_opens_and_fits_at_1400_and_800_px(quick_report, quick_console, tmp_path,
                                                      width, height):
    assert quick_console == []
    # at 1400 px nothing in the main column scrolls sideways; at 800 px a table may scroll
    # in its own box, the main column never
    assert too_wide(quick_report, tmp_path, width, scroll_ok=width < 1400) == []
    pixels = imread(screenshot(quick_report, tmp_path, width, height))
    assert pixels.shape[:2] == (height, width)
    assert float(np.std(pixels[..., :3])) > 0.05, "the screenshot is blank"


def test_the_headline_section_carries_the_runs_figures(quick_report, quick):
    html = quick_report.read_text()
    section = html[html.index('<h2 id="headline"'):html.index('<h2 id="sweeps"')]
    stream = _boot_medians(quick, "keyctl-post", "ns_per_op", case="stream", queues="1")
    figure = fmt_value(math.exp(np.log(stream).mean()))
    assert f'<div class="fig">{figure} ns</div>' in section
    assert section.count('class="card"') == len(HEADLINES)
    assert "icount measures guest instructions" in section
    assert "reader=other-cpu" in section
    assert "(under icount the other CPU is simulated round-robin)" in section


def test_bench_and_all_print_the_headline_and_where_the_report_is(tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(QUICK, runs)
    first, newest = sorted(runs.iterdir())
    ingest_run(newest)
    settings = replace(Settings(), runs_dir=runs)
    print_headline(settings, newest, tmp_path / "reports" / "index.html", "report")
    lines = capsys.readouterr().out.splitlines()
    assert 3 < len(lines) <= MAX_TERMINAL_LINES
    assert lines[0] == "headline: watch_queue-bench on 6.12.117+, icount (guest instructions)," \
                       " 1 boot"
    assert lines[-1] == f"report: {tmp_path / 'reports' / 'index.html'}"
    assert any("1 boot" in line and "delivered post" in line for line in lines)
    assert not any(line.strip().startswith("±") for line in lines)  # no interval to explain
    # a second boot of the same kernel, the same way: the headline pools both
    ingest_run(first)
    print_headline(settings, newest, tmp_path / "reports" / "index.html", "report")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(", 2 boots") and any("±" in line for line in lines[1:-1])


def test_the_headline_answers_for_the_candidate_and_pools_only_comparable_boots(quick_runs):
    ids = sorted(quick_runs["run_id"].astype(str).unique())
    later = quick_runs.assign(run_id=quick_runs["run_id"].astype(str) + "-base",
                              series_hash="another-kernel",
                              timestamp=quick_runs["timestamp"] + pd.Timedelta(hours=1))
    both = pd.concat([quick_runs.astype({"run_id": str}), later], ignore_index=True)
    # the newest boots are another kernel's: an A/B report still answers for its candidate
    assert set(focus(both)["series_hash"].astype(str)) == {"another-kernel"}
    assert set(focus(both, ids)["run_id"].astype(str)) == set(ids)
    # boots of another suite (other iteration counts) are not pooled with these
    other_suite = quick_runs.assign(suite="full", run_id=quick_runs["run_id"].astype(str) + "-f",
                                    timestamp=quick_runs["timestamp"] + pd.Timedelta(hours=1))
    mixed = pd.concat([quick_runs.astype({"run_id": str}), other_suite], ignore_index=True)
    assert set(focus(mixed)["run_id"].astype(str)) == {f"{i}-f" for i in ids}


def test_a_case_without_the_param_is_not_the_largest():
    table = pd.DataFrame({"benchmark": "b", "params": ["q=1", "q=2", "other"],
                          "queues": pd.array(["1", "2", pd.NA], dtype="string")})
    chosen = _choose(table, ["queues"], Pick("b", "m", largest=("queues",)), {})
    assert chosen["params"] == "q=2"


def test_the_terminal_headline_is_cut_to_a_narrow_terminal(quick):
    lines = headline_lines(headlines(quick), focus_text(quick, brief=True), "/r/index.html",
                           width=40)
    assert all(len(line) <= 40 for line in lines[:-1]) and lines[-1] == "report: /r/index.html"


def test_a_kernel_without_a_series_hash_still_gets_its_case_tables(quick_runs, tmp_path):
    bare = quick_runs.assign(series_hash=pd.NA)
    html = write_report(bare, tmp_path, baseline=None, candidate=None).read_text()
    cases = html[html.index('<h2 id="cases"'):html.index('<h2 id="runs"')]
    assert 'id="b-kernel-post"' in cases and ">boots</th>" in cases
