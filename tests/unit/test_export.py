"""`inv export`: the stored runs as Bencher Metric Format, github-action-benchmark's custom
JSON and the tidy summary table, checked against the formats' published shapes.

The inputs are the two recorded sample runs (tests/data/results), each booted five times
with a boot effect as in test_report.py: several benchmarks and params, metrics of both
directions, and the candidate's overflow benchmark skipped.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from invoke import Config, Context
from invoke.exceptions import Exit

import tasks
from tests.recorded import SAMPLES, ingested
from watchbench.errors import ResultsError
from watchbench.report.export import (
    TEXT_COLUMNS,
    Format,
    bmf,
    export_table,
    figure_name,
    github_benchmarks,
    write_export,
)
from watchbench.results import ingest_run
from watchbench.results.schema import KERNEL_IDENTITY
from watchbench.stats.summary import SUMMARY_KEYS, summarize

BOOTS = 5
BASE_LABEL = "debian-6.12.117-1~deb12u1"
JSON_FORMATS = [Format.BMF, Format.GITHUB_SMALLER, Format.GITHUB_BIGGER]
TABLE_FORMATS = [Format.CSV, Format.PARQUET]
WATCHED = "keyctl-post case=watched,filter=none,queues=1,reader=other-cpu [tcg]"

# Published examples, trimmed: the shapes the files must have.
# https://bencher.dev/docs/reference/bencher-metric-format (schema: https://bencher.dev/bmf.json)
BENCHER_EXAMPLE = {
    "benchmark_name": {
        "latency": {"value": 88.0, "lower_value": 87.42, "upper_value": 88.88},
        "throughput": {"value": 5.55, "lower_value": 3.14, "upper_value": 6.30},
    },
    "my_binary": {"file-size": {"value": 42.0}},
}
# https://github.com/benchmark-action/github-action-benchmark#examples (customSmallerIsBetter)
GITHUB_EXAMPLE = [
    {"name": "My Custom Smaller Is Better Benchmark - CPU Load", "unit": "Percent", "value": 50},
    {"name": "My Custom Smaller Is Better Benchmark - Memory Used", "unit": "Megabytes",
     "value": 100, "range": "3", "extra": "Value for Tooltip: 25\nOptional Num #2: 100\nAnything Else!"},
]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_bmf(doc: object) -> None:
    """BMF as its JSON schema says (stricter: no other keys, finite numbers, Bencher's
    length limits): benchmark -> measure -> {value, lower_value?, upper_value?}."""
    assert isinstance(doc, dict) and doc
    for benchmark, measures in doc.items():
        assert isinstance(benchmark, str) and 0 < len(benchmark) <= 1024
        assert isinstance(measures, dict) and measures
        for measure, metric in measures.items():
            assert isinstance(measure, str) and 0 < len(measure) <= 64
            assert isinstance(metric, dict) and "value" in metric
            assert set(metric) <= {"value", "lower_value", "upper_value"}
            assert all(_number(v) for v in metric.values()), metric


def check_github(doc: object) -> None:
    """github-action-benchmark's BenchmarkResult list: name, unit, value, range?, extra?."""
    assert isinstance(doc, list) and doc
    for entry in doc:
        assert isinstance(entry, dict)
        assert {"name", "unit", "value"} <= set(entry) <= {"name", "unit", "value", "range", "extra"}
        assert isinstance(entry["name"], str) and entry["name"]
        assert isinstance(entry["unit"], str)
        assert _number(entry["value"])
        assert all(isinstance(entry[k], str) for k in ("range", "extra") if k in entry)
    names = [entry["name"] for entry in doc]
    assert len(names) == len(set(names))


# --- inputs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return ingested(SAMPLES, tmp_path_factory.mktemp("export") / "runs")


def _booted(samples: pd.DataFrame, source: str, prefix: str, boots: int = BOOTS,
            accel: str | None = None, seed: int = 3, boot_cv: float = 0.01) -> pd.DataFrame:
    """``source`` booted ``boots`` times: each boot scales each series by exp(N(0, boot_cv))."""
    rng = np.random.default_rng(seed)
    frames = []
    for b in range(boots):
        part = samples[samples["run_id"] == source].astype({"run_id": "string", "accel": "string"})
        part["run_id"] = f"{prefix}-{b}"
        if accel:
            part["accel"] = accel
        key = (part["benchmark"].astype("string") + part["params"].astype("string")
               + part["metric"].astype("string").fillna(""))
        effect = {k: rng.normal(0, boot_cv) for k in sorted(key.unique())}
        part["value"] = part["value"] * np.exp(key.map(effect).to_numpy(float))
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def baseline(samples: pd.DataFrame) -> pd.DataFrame:
    return _booted(samples, "sample-baseline", "base")


@pytest.fixture(scope="module")
def both(samples: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Two kernels: the baseline and the candidate (whose overflow benchmark is skipped)."""
    return pd.concat([baseline, _booted(samples, "sample-candidate", "cand", seed=4)],
                     ignore_index=True)


# --- the tidy table -------------------------------------------------------------------


def test_the_table_has_one_row_per_series_and_kernel_with_its_provenance(both: pd.DataFrame):
    table = export_table(both)
    summary = summarize(both)
    assert len(table) == len(summary)
    assert {*KERNEL_IDENTITY, "accel", "boots", "base_label", "series_name", "run_ids"} <= set(table)
    merged = table.merge(summary, on=SUMMARY_KEYS, suffixes=("", "_summary"))
    assert len(merged) == len(table)
    np.testing.assert_array_equal(merged["centre"], merged["centre_summary"])
    assert (table["boots"] == BOOTS).all()
    runs = {"": ",".join(f"base-{b}" for b in range(BOOTS)),
            "wq-rework": ",".join(f"cand-{b}" for b in range(BOOTS))}
    assert (table["run_ids"] == table["series_name"].map(runs)).all()
    assert (table["base_label"] == BASE_LABEL).all()
    # only ok samples: the candidate's skipped overflow benchmark has no row
    overflow = table[table["benchmark"] == "overflow"]
    assert overflow["series_name"].tolist() == [""]
    assert table["ci_low"].lt(table["centre"]).all() and table["ci_high"].gt(table["centre"]).all()


@pytest.mark.parametrize("fmt", TABLE_FORMATS, ids=str)
def test_the_tables_keep_the_kernels_apart_and_read_back_equal(both: pd.DataFrame,
                                                               tmp_path: Path, fmt: Format):
    table = export_table(both)
    path = write_export(table, fmt, tmp_path / "out" / fmt.filename)
    if fmt is Format.CSV:
        numeric = [c for c in table if c not in TEXT_COLUMNS]
        back = pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, "string"), keep_default_na=False,
                           na_values=dict.fromkeys(numeric, [""]))
    else:
        back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table)
    assert set(back["series_hash"]) == {"", "5e71a0b2c9d8"}


# --- Bencher Metric Format ------------------------------------------------------------


def test_bmf_has_the_published_shape_with_the_medians_and_their_intervals(baseline: pd.DataFrame):
    check_bmf(BENCHER_EXAMPLE)
    table = export_table(baseline)
    doc = bmf(table)
    check_bmf(doc)
    assert set(doc[WATCHED]) == {"ns_per_op", "ops_per_s"}
    assert sum(len(measures) for measures in doc.values()) == len(table)
    for _, row in table.iterrows():
        metric = doc[figure_name(row)][row["metric"]]
        assert metric == {"value": row["centre"], "lower_value": row["ci_low"],
                          "upper_value": row["ci_high"]}
        assert metric["lower_value"] < metric["value"] < metric["upper_value"]


def test_bmf_of_a_single_boot_has_no_interval(samples: pd.DataFrame):
    table = export_table(samples[samples["run_id"] == "sample-baseline"])
    assert (table["boots"] == 1).all() and table["ci_low"].isna().all()
    doc = bmf(table)
    check_bmf(doc)
    assert all(set(metric) == {"value"} for measures in doc.values() for metric in measures.values())


def test_figure_names_read_as_benchmark_params_and_accelerator():
    row = {"benchmark": "keyctl-post", "params": "case=stream, queues=1", "accel": "icount"}
    assert figure_name(row) == "keyctl-post case=stream,queues=1 [icount]"
    assert figure_name({**row, "params": ""}) == "keyctl-post [icount]"


# --- github-action-benchmark ----------------------------------------------------------


@pytest.mark.parametrize(("fmt", "direction", "metrics"), [
    (Format.GITHUB_SMALLER, "lower", {"ns_per_op", "ns_per_record", "lost_ratio"}),
    (Format.GITHUB_BIGGER, "higher", {"ops_per_s"}),
], ids=["smaller", "bigger"])
def test_github_files_hold_one_direction_with_units_intervals_and_provenance(
        baseline: pd.DataFrame, fmt: Format, direction: str, metrics: set[str]):
    check_github(GITHUB_EXAMPLE)
    table = export_table(baseline)
    doc = github_benchmarks(table, fmt)
    check_github(doc)
    rows = table[table["direction"] == direction]
    assert len(doc) == len(rows) and set(rows["metric"]) == metrics
    for entry, (_, row) in zip(doc, rows.iterrows(), strict=True):
        assert entry["name"] == f"{figure_name(row)} {row['metric']} ({row['unit']})"
        assert entry["unit"] == row["unit"] and entry["value"] == row["centre"]
        low, high = map(float, re.fullmatch(r"95% CI \[(\S+), (\S+)\]", entry["range"]).groups())
        assert low == pytest.approx(row["ci_low"], rel=1e-5)
        assert high == pytest.approx(row["ci_high"], rel=1e-5)
        extra = entry["extra"]
        for text in (f"kernel: {BASE_LABEL}", "series hash: -", "config hash: c0ffee12ab34",
                     "tree base: 9b1e4c2d7a3f", "accel: tcg", f"boots: {BOOTS}",
                     *(f"base-{b}" for b in range(BOOTS))):
            assert text in extra, (text, extra)


def test_a_github_file_without_a_metric_of_its_direction_is_refused(baseline: pd.DataFrame,
                                                                    tmp_path: Path):
    table = export_table(baseline)
    lower_only = table[table["direction"] == "lower"]
    with pytest.raises(ResultsError, match="no higher-is-better metrics"):
        write_export(lower_only, Format.GITHUB_BIGGER, tmp_path / "bigger.json")
    assert list(tmp_path.iterdir()) == []


# --- all JSON formats -----------------------------------------------------------------


def _builder(fmt: Format):
    return bmf if fmt is Format.BMF else (lambda table: github_benchmarks(table, fmt))


@pytest.mark.parametrize("fmt", JSON_FORMATS, ids=str)
def test_json_files_load_back_to_the_same_values(baseline: pd.DataFrame, tmp_path: Path,
                                                 fmt: Format):
    table = export_table(baseline)
    path = write_export(table, fmt, tmp_path / "deep" / "dir" / fmt.filename)
    assert path == tmp_path / "deep" / "dir" / fmt.filename
    assert json.loads(path.read_text(encoding="utf-8")) == _builder(fmt)(table)
    assert [p.name for p in path.parent.iterdir()] == [fmt.filename]  # no temporary left


@pytest.mark.parametrize("fmt", JSON_FORMATS, ids=str)
def test_json_files_refuse_to_mix_kernels(both: pd.DataFrame, tmp_path: Path, fmt: Format):
    table = export_table(both)
    with pytest.raises(ResultsError) as caught:
        write_export(table, fmt, tmp_path / fmt.filename)
    message = str(caught.value)
    assert "2 kernels" in message
    assert f"{BASE_LABEL} + wq-rework" in message and f"  {BASE_LABEL} (tree" in message
    assert "base-0, base-1" in message and "cand-0" in message
    assert "--runs" in caught.value.hint
    assert not (tmp_path / fmt.filename).exists()


@pytest.mark.parametrize("fmt", JSON_FORMATS, ids=str)
def test_accelerators_never_share_a_name(samples: pd.DataFrame, fmt: Format):
    df = pd.concat([_booted(samples, "sample-baseline", "tcg"),
                    _booted(samples, "sample-baseline", "kvm", accel="kvm", seed=9)],
                   ignore_index=True)
    table = export_table(df)
    doc = _builder(fmt)(table)
    names = list(doc) if fmt is Format.BMF else [entry["name"] for entry in doc]
    for name in names:
        assert ("[tcg]" in name) != ("[kvm]" in name), name
    if fmt is Format.BMF:
        kvm = table[(table["accel"] == "kvm") & (table["metric"] == "ns_per_op")]
        for _, row in kvm.iterrows():
            assert doc[figure_name(row)]["ns_per_op"]["value"] == row["centre"]
        assert WATCHED in doc and WATCHED.replace("[tcg]", "[kvm]") in doc


def test_nothing_to_export_is_an_error(samples: pd.DataFrame):
    skipped = samples.assign(status=pd.Categorical(["skipped"] * len(samples)))
    with pytest.raises(ResultsError, match="no ok samples"):
        export_table(skipped)


# --- the task -------------------------------------------------------------------------


def _context(runs: Path, reports: Path) -> Context:
    return Context(Config(overrides={"watchbench": {"runs_dir": str(runs),
                                                    "reports_dir": str(reports)}}))


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(SAMPLES, runs)
    for run in sorted(runs.iterdir()):
        ingest_run(run)
    return runs


def test_the_task_writes_the_default_file_and_prints_a_count_and_the_path(
        stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reports = tmp_path / "reports"
    tasks.export(_context(stored, reports), format="github-smaller", runs="sample-baseline")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["7 figures of 1 run as github-smaller",
                     str(reports / "export.github-smaller.json")]
    check_github(json.loads(Path(lines[-1]).read_text(encoding="utf-8")))

    out = tmp_path / "all.parquet"
    tasks.export(_context(stored, reports), format="parquet", runs="all", out=str(out))
    assert capsys.readouterr().out.splitlines()[-1] == str(out)
    assert pd.read_parquet(out)["series_name"].unique().tolist() == ["", "wq-rework"]


def test_without_runs_the_newest_run_and_those_comparable_with_it_are_exported(
        stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """As the headline pools them (questions.focus): one kernel's runs, so a JSON format
    works on a cache holding several kernels (issue 30)."""
    manifests = {run.name: json.loads((run / "manifest.json").read_text())
                 for run in stored.iterdir()}
    newest = max(manifests, key=lambda r: manifests[r]["timestamp"])
    out = tmp_path / "newest.parquet"
    tasks.export(_context(stored, tmp_path / "reports"), format="parquet", out=str(out))
    captured = capsys.readouterr()
    assert f"the newest run {newest}" in captured.err and "--runs all" in captured.err
    table = pd.read_parquet(out)
    assert table["series_name"].unique().tolist() == [manifests[newest]["series_name"]]
    assert newest in ",".join(table["run_ids"])
    tasks.export(_context(stored, tmp_path / "reports"), format="bmf")
    assert capsys.readouterr().out.splitlines()[-1].endswith("export.bmf.json")


@pytest.mark.parametrize(("fmt", "expected"), [
    ("bmf", "2 kernels"), ("json", "unknown export format 'json'"), (None, "needs --format"),
])
def test_the_task_refuses_mixed_kernels_and_unknown_formats(
        stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt, expected):
    with pytest.raises(Exit) as caught:
        tasks.export(_context(stored, tmp_path / "reports"), format=fmt, runs="all")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "hint:" in err
    assert not (tmp_path / "reports").exists()


def test_the_task_documents_every_option_and_every_format():
    task = tasks.ns["export"]
    arguments = {a.name: a.help for a in task.get_arguments()}
    assert set(arguments) == {"format", "runs", "out", "skip_bad"}
    assert all(arguments.values()), arguments
    assert all(fmt.value in arguments["format"] for fmt in Format)
