"""The instruction-count profile: the plugin's file read, paired with the records, mapped to
functions and diffed; replayed from two real profiled boots (tests/data/results/profile-ci,
kept by tests.recorded.record_profiles; re-made live in tests/integration)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.recorded import PROFILES
from watchbench.kernel.symbols import UNKNOWN, USER, SymbolMap
from watchbench.report.profile import diff_lines, diff_markdown, fmt_change, profile_lines
from watchbench.results.profile import (
    ASYNC,
    ProfileError,
    cases,
    load_profiles,
    profile_table,
    read_insns,
    read_profile,
    read_records,
    write_profile,
)
from watchbench.stats.profilediff import case_totals, profile_diff, top_changes
from watchbench.suite.definition import load_suite
from watchbench.suite.profile import OURS

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p for p in PROFILES.iterdir() if p.is_dir())


def _insns(run: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{run.name}-insns.txt"
    path.write_bytes(gzip.decompress((run / "raw" / "insns.txt.gz").read_bytes()))
    return path


def _table(run: Path, tmp_path: Path) -> pd.DataFrame:
    suite = load_suite(ROOT, json.loads((run / "manifest.json").read_text())["suite"])
    programs = [(r.name, read_records(run / "raw" / f"{r.name}.jsonl")) for r in suite.runs
                if r.kind in OURS]
    path = _insns(run, tmp_path)
    return profile_table(read_insns(path), programs, SymbolMap.load(PROFILES / "System.map"),
                         run.name, path)


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> list[pd.DataFrame]:
    assert len(RUNS) == 2, "two recorded profiled boots"
    tmp = tmp_path_factory.mktemp("profiles")
    return [_table(run, tmp) for run in RUNS]


def test_the_plugin_file_has_a_program_per_start_and_every_region_sums(tmp_path):
    insns = read_insns(_insns(RUNS[0], tmp_path))
    assert insns.exited and insns.unmatched_ends == 0
    assert len(insns.programs) == 5  # conformance and the four C benchmarks of the ci suite
    assert len(insns.programs[0].regions) == 0  # conformance marks nothing
    assert all(len(p.regions) > 0 for p in insns.programs[1:])


def test_every_case_agrees_with_its_icount_timing(tables):
    """Under icount 1 ns is 1 instruction: the plugin's instructions per op and the
    program's ns_per_op differ only by what lies outside the markers (the clock reads,
    ~40 instructions a pair): the operation's and the asynchronous instructions together."""
    table = cases(tables[0])
    gap = (table["total_per_op"] - table["ns_per_op"]).abs()
    # per op: at most the two clock reads of a timed interval (~40 instructions each)
    assert len(table) >= 10 and (gap < 0.2).all() and (gap / table["ns_per_op"] < 0.01).all(), \
        table.assign(gap=gap)


def test_the_functions_of_the_post_path_are_named(tables):
    table = tables[0]
    free = table[(table["benchmark"] == "kernel-post") & table["params"].str.contains("case=free")]
    top = free[free["symbol"] != ASYNC].iloc[0]
    assert top["symbol"].startswith("post_one_notification"), free.head()
    assert top["instr_per_op"] == round(top["instr_per_op"])  # the same work every post
    baseline = table[(table["benchmark"] == "keyctl-post")
                     & table["params"].str.contains("case=baseline")]
    assert USER in set(baseline["symbol"]) and "lookup_user_key" in set(baseline["symbol"])


def test_two_boots_give_the_same_counts_and_a_zero_diff(tables):
    diff = profile_diff(*tables)
    assert not diff["changed"].any(), diff[diff["changed"]].head(10)
    exact = diff[~diff["interleaved"] & (diff["symbol"] != ASYNC)]
    assert (exact["delta"].abs() < 1e-9).mean() > 0.97  # the rest: timing (atime updates)
    assert not case_totals(diff)["changed"].any()
    assert diff_lines(diff)[-1].endswith("no function changed")


def test_a_change_is_found_and_said_per_op(tables):
    base = tables[0]
    cand = base.copy()
    hit = (cand["benchmark"] == "kernel-post") & cand["symbol"].str.startswith("post_one")
    cand.loc[hit, "instr_per_op"] += 64
    cand = pd.concat([cand, cand[hit].assign(symbol="watch_queue_extra_work",
                                             instr_per_op=320.0)], ignore_index=True)
    top = top_changes(profile_diff(base, cand), 2)
    free = top[top["params"].str.contains("case=free")]
    assert list(free["symbol"]) == ["watch_queue_extra_work", "post_one_notification.isra.0"]
    assert fmt_change("post_one_notification", 512, 0.38) == \
        "post_one_notification +512 instr/op (+38 %)"
    assert fmt_change("x", 320, float("nan")).endswith("(new)")
    moved = pd.DataFrame([{"benchmark": "kernel-post", "params": free["params"].iloc[0],
                           "metric": "ns_per_op", "verdict": "regressed"}])
    text = diff_markdown(profile_diff(base, cand), moved)
    assert "`watch_queue_extra_work +320 instr/op (new)`" in text


def test_profile_lines_fit_the_terminal(tables):
    lines = profile_lines(tables[0], n=5, width=80)
    assert lines and max(map(len, lines)) <= 80
    assert any("post_one_notification" in line for line in lines)


def test_the_table_round_trips_and_a_wrong_schema_is_refused(tables, tmp_path):
    write_profile(tmp_path, tables[0])
    pd.testing.assert_frame_equal(read_profile(tmp_path), tables[0])
    write_profile(tmp_path, tables[0].assign(schema=99))
    with pytest.raises(ProfileError, match="schema"):
        read_profile(tmp_path)


def test_a_torn_or_foreign_file_and_a_missing_program_say_what(tmp_path):
    good = _insns(RUNS[0], tmp_path)
    torn = tmp_path / "torn.txt"
    torn.write_text(good.read_text()[:-5000])  # QEMU killed while it wrote
    assert not read_insns(torn).exited
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("hello\n")
    with pytest.raises(ProfileError, match="not a wb-insns 1 file"):
        read_insns(foreign)
    with pytest.raises(ProfileError, match="program starts"):
        profile_table(read_insns(good), [("only-one", [])], SymbolMap.load(
            PROFILES / "System.map"), "x", good)
    with pytest.raises(ProfileError, match="no counts"):
        read_insns(tmp_path / "missing.txt")


def test_records_that_claim_regions_the_plugin_never_saw_are_refused(tmp_path):
    good = _insns(RUNS[0], tmp_path)
    insns = read_insns(good)
    record = {"status": "ok", "benchmark": "overflow", "params": {}, "totals": {"ns": 1},
              "roi": {"first": 99, "count": 1, "ops": 10}}
    programs = [("conformance", []), ("a", []), ("b", []), ("overflow", [record]), ("c", [])]
    with pytest.raises(ProfileError, match="claims regions 99..99"):
        profile_table(insns, programs, SymbolMap.load(PROFILES / "System.map"), "x", good)


def test_addresses_map_to_functions_user_and_unknown(tmp_path):
    path = tmp_path / "System.map"
    path.write_text("ffffffff81000000 T _stext\nffffffff81000100 t alpha\n"
                    "ffffffff81000200 T beta\nffffffff81000300 D data\n"
                    "ffffffff81000400 T _etext\n")
    symbols = SymbolMap.load(path)
    names = symbols.names_of(np.array([0x401000, 0xffffffff81000150, 0xffffffff81000250,
                                       0xffffffff81000500, 0xffff888000000000], dtype=np.uint64))
    assert list(names) == [USER, "alpha", "beta", UNKNOWN, UNKNOWN]
    symbols.write_starts(tmp_path / "starts.txt", ("be",))
    assert (tmp_path / "starts.txt").read_text() == "ffffffff81000200\n"


def test_stored_profiles_load_together_and_a_missing_one_is_named(tables, tmp_path):
    for table in tables:
        (tmp_path / table["run_id"].iloc[0]).mkdir()
        write_profile(tmp_path / table["run_id"].iloc[0], table)
    both = load_profiles(tmp_path)
    assert set(both["run_id"]) == {t["run_id"].iloc[0] for t in tables}
    one = load_profiles(tmp_path, [tables[0]["run_id"].iloc[0]])
    assert len(one) == len(tables[0])
    with pytest.raises(ProfileError, match="no profile for run"):
        load_profiles(tmp_path, ["nope"])
