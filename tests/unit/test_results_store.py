"""The results store: ingest of recorded outputs, Parquet round trip, bad files, migration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from watchbench.errors import ResultsError
from watchbench.results import ingest_run, load_runs, schema
from watchbench.results.rundir import RESULTS_FILE

DATA = Path(__file__).resolve().parents[1] / "data" / "results"
PYTEST_JSON = DATA / "pytest-benchmark-real.json"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A private copy of the sample runs (tests never write into tests/data)."""
    shutil.copytree(DATA / "runs", tmp_path / "runs")
    return tmp_path / "runs"


def _manifest(run_id: str, **over: object) -> dict:
    doc = json.loads((DATA / "runs" / "sample-baseline" / "manifest.json").read_text())
    return {**doc, "run_id": run_id, **over}


def _make_run(root: Path, run_id: str, lines: list[dict | str], **manifest: object) -> Path:
    run = root / run_id
    (run / "raw").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(_manifest(run_id, **manifest)))
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    (run / "raw" / "bench.jsonl").write_text(text + "\n")
    return run


def _record(**over: object) -> dict:
    rec = {"schema": 1, "benchmark": "pipe-read", "source": "c", "params": {"batch": 16},
           "repeat": 0, "iterations": 10,
           "metrics": {"ns_per_record": {"value": 350.0, "unit": "ns", "direction": "lower"}},
           "status": "ok"}
    return {**rec, **over}


# --- ingest ----------------------------------------------------------------------------


def test_ingest_turns_every_metric_of_every_record_into_a_row(runs: Path):
    path = ingest_run(runs / "sample-baseline")
    assert path == runs / "sample-baseline" / RESULTS_FILE
    df = load_runs(runs, ["sample-baseline"])
    per_benchmark = df.groupby("benchmark", observed=True).size().to_dict()
    # keyctl-post: 2 cases x 8 repeats x 2 metrics; py-pipe-read: 40 + 35 pytest rounds
    assert per_benchmark == {"keyctl-post": 32, "pipe-read": 8, "overflow": 8,
                             "kernel-post": 8, "py-pipe-read": 75}
    first = json.loads((runs / "sample-baseline/raw/c-bench.jsonl").read_text().splitlines()[1])
    row = df[(df["benchmark"] == "keyctl-post") & (df["metric"] == "ops_per_s")].iloc[0]
    assert row["value"] == first["metrics"]["ops_per_s"]["value"]
    assert (row["unit"], row["direction"], row["source"]) == ("op/s", "higher", "c")
    assert row["params"] == "case=unwatched, filter=none, queues=1, reader=other-cpu"
    assert (row["param_case"], row["param_queues"]) == ("unwatched", 1)
    assert (row["iteration"], row["loops"], row["count_posted"]) == (0, 100000, 100000)
    assert (row["accel"], row["label"], row["run_id"]) == ("tcg", "baseline", "sample-baseline")
    assert row["timestamp"] == pd.Timestamp("2025-06-01T10:00:00Z")
    assert row["schema_version"] == schema.SCHEMA_VERSION
    kernel = df[df["source"] == "kernel"]
    assert set(kernel["benchmark"]) == {"kernel-post"} and kernel["status"].eq("ok").all()


def test_a_skipped_record_becomes_one_row_with_its_reason(runs: Path):
    ingest_run(runs / "sample-candidate")
    df = load_runs(runs, ["sample-candidate"])
    skipped = df[df["status"] == "skipped"]
    assert len(skipped) == 1
    row = skipped.iloc[0]
    assert (row["benchmark"], row["params"]) == ("overflow", "queue_size=16")
    assert row["reason"] == "pipe2(O_NOTIFICATION_PIPE): ENOPKG"
    assert pd.isna(row["value"]) and pd.isna(row["metric"])


def test_ingest_reads_the_raw_samples_of_a_real_pytest_benchmark_json(tmp_path: Path):
    run = _make_run(tmp_path, "py", ["only chatter, no records"])
    shutil.copy(PYTEST_JSON, run / "raw" / "pytest-python.json")
    ingest_run(run)
    df = load_runs(tmp_path)
    doc = json.loads(PYTEST_JSON.read_text())
    for bench in doc["benchmarks"]:
        size = bench["params"]["size"]
        rows = df[df["param_size"] == size]
        assert rows["value"].tolist() == pytest.approx([s * 1e9 for s in bench["stats"]["data"]])
        assert rows["iteration"].tolist() == list(range(len(bench["stats"]["data"])))
        assert rows["loops"].eq(bench["stats"]["iterations"]).all()
    assert set(df["benchmark"]) == {"py-pipe-read"}
    assert set(df["params"]) == {"reader=same-thread, size=64", "reader=same-thread, size=4096"}
    assert set(df["metric"]) == {"ns_per_op"} and set(df["source"]) == {"python"}


def test_pytest_json_divides_by_ops_per_round_and_keeps_counts(tmp_path: Path):
    doc = json.loads(PYTEST_JSON.read_text())
    for bench in doc["benchmarks"]:
        bench["extra_info"].update(ops_per_round=4, counts={"posted": 400, "lost": 3})
    run = _make_run(tmp_path, "py", ["chatter"])
    (run / "raw" / "pytest-python.json").write_text(json.dumps(doc))
    ingest_run(run)
    df = load_runs(tmp_path)
    first = doc["benchmarks"][0]
    rows = df[df["param_size"] == first["params"]["size"]]
    assert rows["value"].iloc[0] == pytest.approx(first["stats"]["data"][0] * 1e9 / 4)
    assert rows["count_lost"].eq(3).all() and rows["count_posted"].eq(400).all()


def test_pytest_json_without_raw_samples_is_refused_with_the_flag_to_use(tmp_path: Path):
    doc = json.loads(PYTEST_JSON.read_text())
    for bench in doc["benchmarks"]:
        del bench["stats"]["data"]
    run = _make_run(tmp_path, "py", [_record()])
    (run / "raw" / "pytest-python.json").write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match="no raw samples") as err:
        ingest_run(run)
    assert "--benchmark-save-data" in str(err.value)
    assert not (run / RESULTS_FILE).exists()


def test_ingest_is_idempotent(runs: Path):
    first = pd.read_parquet(ingest_run(runs / "sample-baseline"))
    second = pd.read_parquet(ingest_run(runs / "sample-baseline"))
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(("record", "message"), [
    ('{"schema": 1, "benchmark": "pipe-read", "source": "c", "stat', "not valid JSON"),
    (_record(schema=2), "record schema 2"),
    (_record(metrics={}), "non-empty metrics"),
    (_record(metrics={"x": {"value": "fast", "unit": "ns", "direction": "lower"}}),
     "no finite numeric value"),
    (_record(metrics={"x": {"value": 1.0, "unit": "ns", "direction": "down"}}),
     "direction 'down'"),
    (_record(status="skipped", metrics=None), "must say why"),
    (_record(status="crashed"), "status 'crashed'"),
    (_record(source="rust"), "source 'rust'"),
    (_record(params={"nested": {"a": 1}}), "not a flat"),
    (_record(repeat=-1), "repeat -1"),
])
def test_a_malformed_record_names_file_and_line_and_leaves_the_old_results(
    tmp_path: Path, record: dict | str, message: str
):
    run = _make_run(tmp_path, "r", [_record(), _record(repeat=1)])
    good = ingest_run(run).read_bytes()
    (run / "raw" / "bench.jsonl").write_text(
        "\n".join([json.dumps(_record()), "progress: 50 %",
                   record if isinstance(record, str) else json.dumps(record)]) + "\n")
    with pytest.raises(ResultsError, match=message) as err:
        ingest_run(run)
    assert f"{run / 'raw' / 'bench.jsonl'}:3" in str(err.value)
    assert (run / RESULTS_FILE).read_bytes() == good
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json", "raw", RESULTS_FILE]


def test_a_manifest_without_provenance_is_refused(tmp_path: Path):
    run = _make_run(tmp_path, "r", [_record()])
    doc = json.loads((run / "manifest.json").read_text())
    del doc["accel"], doc["config_hash"]
    (run / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match="manifest lacks accel, config_hash") as err:
        ingest_run(run)
    assert str(run / "manifest.json") in str(err.value)


def test_a_run_without_records_is_an_error(tmp_path: Path):
    run = _make_run(tmp_path, "r", ["booting...", "nothing else"])
    with pytest.raises(ResultsError, match="no benchmark records"):
        ingest_run(run)


# --- loading ---------------------------------------------------------------------------


def _ingest_all(runs: Path) -> None:
    for run in sorted(runs.iterdir()):
        ingest_run(run)


def test_load_runs_combines_all_runs(runs: Path):
    _ingest_all(runs)
    df = load_runs(runs)
    assert sorted(df["run_id"].unique()) == ["sample-baseline", "sample-candidate"]
    assert len(df) == 131 + 124
    assert df.attrs["bad_files"] == []


def test_a_corrupt_file_is_reported_by_name_and_never_touched(runs: Path):
    _ingest_all(runs)
    bad = runs / "sample-candidate" / RESULTS_FILE
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ResultsError, match="could not be read") as err:
        load_runs(runs)
    assert str(bad) in str(err.value) and "--skip-bad" in str(err.value)
    df = load_runs(runs, skip_bad=True)
    assert set(df["run_id"]) == {"sample-baseline"}
    assert [path for path, _ in df.attrs["bad_files"]] == [str(bad)]
    assert bad.read_bytes() == b"PAR1 this is not parquet"


def test_a_file_from_a_newer_schema_is_refused(runs: Path, monkeypatch: pytest.MonkeyPatch):
    _ingest_all(runs)
    current = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 7)
    ingest_run(runs / "sample-candidate")  # written as schema 7
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current)
    with pytest.raises(ResultsError, match=f"schema 7, this watchbench reads up to {current}"):
        load_runs(runs)
    assert set(load_runs(runs, skip_bad=True)["run_id"]) == {"sample-baseline"}


def test_an_older_schema_is_migrated_on_read_and_left_as_it_is(
    runs: Path, monkeypatch: pytest.MonkeyPatch
):
    _ingest_all(runs)
    path = runs / "sample-baseline" / RESULTS_FILE
    before = path.read_bytes()

    def rename_ns(df: pd.DataFrame) -> pd.DataFrame:  # a plausible v -> v + 1 change
        return df.assign(unit=df["unit"].astype("string").replace({"ns": "nanoseconds"}))

    v = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", v + 1)
    monkeypatch.setitem(schema.MIGRATIONS, v, rename_ns)
    df = load_runs(runs)
    assert "ns" not in set(df["unit"].dropna()) and "nanoseconds" in set(df["unit"])
    assert (df["schema_version"] == v + 1).all()
    assert path.read_bytes() == before

    monkeypatch.delitem(schema.MIGRATIONS, v)
    with pytest.raises(ResultsError, match=f"no migration from results schema {v} to {v + 1}"):
        load_runs(runs)


def test_a_schema_1_file_gets_its_primary_metrics_from_the_legacy_rule(runs: Path):
    """Files written before records flagged their primary metric still gate something."""
    _ingest_all(runs)
    path = runs / "sample-baseline" / RESULTS_FILE
    old = pd.read_parquet(path).drop(columns="primary").assign(schema_version=1)
    old.to_parquet(path)
    df = load_runs(runs, run_ids=["sample-baseline"])
    ok = df[df["status"] == "ok"]
    assert ok["primary"].any()
    assert set(ok.loc[ok["primary"], "metric"]) <= set(schema.LEGACY_PRIMARY)
    assert not ok.loc[~ok["metric"].isin(schema.LEGACY_PRIMARY), "primary"].any()


def test_a_record_with_two_primary_metrics_is_refused(tmp_path: Path):
    from watchbench.results.records import record_rows

    metric = {"value": 1.0, "unit": "ns", "direction": "lower", "primary": True}
    record = {"schema": 1, "benchmark": "b", "source": "c", "status": "ok",
              "metrics": {"ns_per_op": metric, "ns_per_record": metric}}
    with pytest.raises(ResultsError, match="all primary"):
        record_rows(record, "x.jsonl:3", "x.jsonl")
    record["metrics"] = {"ops_per_s": {**metric, "primary": False}, "ns_per_op": metric}
    rows = record_rows(record, "x.jsonl:3", "x.jsonl")
    assert [r["primary"] for r in rows] == [False, True]


def test_load_runs_names_unknown_and_uningested_runs(runs: Path):
    ingest_run(runs / "sample-baseline")
    with pytest.raises(ResultsError, match="no such run") as err:
        load_runs(runs, ["nope"])
    assert "sample-baseline" in str(err.value)
    with pytest.raises(ResultsError, match="has not been ingested"):
        load_runs(runs, ["sample-candidate"])
    with pytest.raises(ResultsError, match="no runs directory"):
        load_runs(runs / "missing")


def test_a_param_that_changes_type_between_runs_loads_as_text(tmp_path: Path):
    ingest_run(_make_run(tmp_path, "a", [_record(params={"batch": 16})]))
    ingest_run(_make_run(tmp_path, "b", [_record(params={"batch": "auto"})]))
    df = load_runs(tmp_path)
    assert sorted(df["param_batch"].astype(str)) == ["16", "auto"]
    assert sorted(df["params"]) == ["batch=16", "batch=auto"]


def test_ci_manifest_keys_become_columns_and_runs_without_them_get_missing_values(tmp_path: Path):
    ci = {"ci_id": "ci-1", "ci_role": "patch", "ci_round": 2, "patch_index": 1,
          "patch_subject": "watch_queue: fix", "kernel_key": "d3bcf1216e99821f",
          "compiler": "gcc 12", "wall_seconds": 20.5}
    ingest_run(_make_run(tmp_path, "ci-run", [_record()], **ci))
    ingest_run(_make_run(tmp_path, "plain-run", [_record()]))
    df = load_runs(tmp_path).set_index("run_id")
    ci_row, plain = df.loc["ci-run"], df.loc["plain-run"]
    assert (ci_row["ci_id"], ci_row["ci_role"], ci_row["ci_round"]) == ("ci-1", "patch", 2)
    assert (ci_row["patch_index"], ci_row["patch_subject"]) == (1, "watch_queue: fix")
    assert (ci_row["kernel_key"], ci_row["compiler"]) == ("d3bcf1216e99821f", "gcc 12")
    assert pd.isna(plain["ci_id"]) and pd.isna(plain["ci_round"]) and pd.isna(plain["ci_role"])
    assert str(df["ci_round"].dtype) == "Int64"
    assert "wall_seconds" not in df.columns  # unknown keys stay in the manifest
    alone = load_runs(tmp_path, ["plain-run"])  # present even when no loaded run has them
    assert {"ci_id", "ci_role", "ci_round", "kernel_key"} <= set(alone.columns)
    assert alone["ci_role"].isna().all()


@pytest.mark.parametrize(("over", "message"), [
    ({"ci_role": "reviewer"}, "ci_role 'reviewer' is not one of baseline, candidate, patch"),
    ({"ci_round": "2"}, "ci_round '2' is not an integer"),
    ({"ci_id": 7}, "ci_id 7 is not a string"),
])
def test_bad_ci_manifest_keys_are_refused(tmp_path: Path, over: dict, message: str):
    run = _make_run(tmp_path, "r", [_record()], **over)
    with pytest.raises(ResultsError, match=message):
        ingest_run(run)


@pytest.mark.parametrize("values", [
    ["b", "a", "b", None, "ä", "", "😀", "A"],  # text: code point order, missing kept
    [1, "1", 2.5, None, True, float("nan")],  # mixed: 1 and "1" are one category
    [1, 1.0, True],  # equal to Python, three texts
    [None, None],
    [],
    [["a"], "b"],  # unhashable, as a hand-edited manifest may give
])
def test_text_columns_become_the_categories_a_string_conversion_gives(values):
    """Ingest's quick path (schema.text_category) gives what the conversion it replaced,
    ``astype("string").astype("category")``, gives an object column of the same values: the
    same texts, missing ones, categories and their order and dtype."""
    import numpy as np

    quick = pd.Series(schema.text_category(np.array(values, dtype=object)))
    slow = pd.Series(values, dtype=object).astype("string").astype("category")
    pd.testing.assert_series_equal(quick, slow)
    assert list(quick.cat.categories) == list(slow.cat.categories)
    assert quick.cat.categories.dtype == slow.cat.categories.dtype
