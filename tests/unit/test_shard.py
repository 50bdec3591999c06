"""`inv ci --shard I/N` and `--merge`: the design dealt out, the shards written and checked,
and the merge deciding exactly as one machine does on the same boots. Faked kernels and
boots (tests/fakes.py); the real ones in tests/integration/test_ci_integration.py."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeBench, FakeKernels
from watchbench.cli.regressions import report_gate, shard_gate
from watchbench.errors import InputError, ResultsError
from watchbench.flows.ci import EXIT_OK, EXIT_REGRESSED, CiOptions, run_ci
from watchbench.flows.shard import (
    SHARD_FILE,
    parse_shard,
    run_merge,
    run_shard,
    shard_rounds,
)
from watchbench.host.progress import Silent
from watchbench.settings import Settings

SLOW = str(Path(__file__).resolve().parents[1] / "data" / "patches" / "slow-post")


def _slower(kernel, bench):
    return 1.2 if bench == "kernel-post" and kernel.series.endswith("slow-post") else 1.0


class RoundSeeded(FakeBench):
    """Each boot's figures depend only on its round and its kernel, not on which process
    boots it or when: so one machine and the shards see exactly the same figures."""

    def __init__(self, level=None, seed: int = 0, **kw):
        super().__init__(level, **kw)
        self.seed = seed

    def __call__(self, settings, *args, **kw):
        extra = kw.get("extra") or {}
        if kw.get("profile"):  # the gate's explanation after the verdict: not a round
            return super().__call__(settings, *args, **kw)
        self.rng = np.random.default_rng(
            [self.seed, extra["ci_round"], extra["patch_index"], int(kw["label"] == "baseline")])
        return super().__call__(settings, *args, **kw)


def _machine(tmp_path: Path, name: str) -> Settings:
    return replace(Settings(), cache_dir=tmp_path / name / "cache",
                   runs_dir=tmp_path / name / "runs", reports_dir=tmp_path / name / "reports")


def _options(out: Path, series: str = "", **kw) -> CiOptions:
    return CiOptions(series=series, out=out, **{"jobs": 1, **kw})


def _shards(tmp_path: Path, series: str = "", count: int = 2, bench=None, **kw) -> list[Path]:
    """Each shard on a machine of its own (its own runs directory), as matrix jobs are."""
    dirs = []
    for index in range(1, count + 1):
        done = run_shard(_machine(tmp_path, f"runner{index}"),
                         _options(tmp_path / "artifacts", series, **kw), f"{index}/{count}",
                         kernels=FakeKernels(tmp_path / f"runner{index}"),
                         bench=bench or RoundSeeded(_slower if series else None))
        dirs.append(done.directory)
    return dirs


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, RoundSeeded]:
    """``_shards(rounds=4)`` of the A/A, run once for the module (its artifacts directory
    and the bench that booted them): the tests that read or edit them take a copy each
    (``_four_rounds``)."""
    root = tmp_path_factory.mktemp("four-rounds")
    bench = RoundSeeded()
    _shards(root, bench=bench, rounds=4)
    return root / "artifacts", bench


def _four_rounds(tmp_path: Path, made: tuple[Path, RoundSeeded]) -> list[Path]:
    """A copy of ``made``'s shards in ``tmp_path / "artifacts"``, as ``_shards(tmp_path,
    rounds=4)`` leaves them."""
    shutil.copytree(made[0], tmp_path / "artifacts")
    return [tmp_path / "artifacts" / f"shard-{index}-of-2" for index in (1, 2)]


def _edit(shard: Path, change) -> None:
    record = json.loads((shard / SHARD_FILE).read_text())
    change(record)
    (shard / SHARD_FILE).write_text(json.dumps(record))


# --- the design dealt out -----------------------------------------------------------------


@pytest.mark.parametrize("text,parsed", [("1/2", (1, 2)), (" 3 / 3 ", (3, 3))])
def test_a_shard_is_i_of_n(text, parsed):
    assert parse_shard(text) == parsed


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_shard_that_is_not_i_of_n_is_refused(text):
    with pytest.raises(InputError, match="give I/N"):
        parse_shard(text)


def test_rounds_are_dealt_as_whole_abba_pairs_and_every_round_once():
    assert shard_rounds(12, 1, 2) == [0, 1, 4, 5, 8, 9]
    assert shard_rounds(12, 2, 2) == [2, 3, 6, 7, 10, 11]
    assert shard_rounds(5, 2, 2) == [2, 3] and shard_rounds(5, 1, 2) == [0, 1, 4]
    for total, count in ((12, 3), (7, 2), (4, 2)):
        dealt = [r for i in range(1, count + 1) for r in shard_rounds(total, i, count)]
        assert sorted(dealt) == list(range(total))
    # the first look (4 rounds) takes its rounds from both shards of two
    assert {r for r in range(4) if r in shard_rounds(12, 1, 2)} == {0, 1}


def test_more_shards_than_pairs_is_refused():
    with pytest.raises(InputError, match="4 rounds make 2 ABBA pairs"):
        shard_rounds(4, 1, 3)


# --- the merge decides as one machine ------------------------------------------------------


@pytest.mark.parametrize("series,code", [("", EXIT_OK), (SLOW, EXIT_REGRESSED)],
                         ids=["a-a", "slow-post"])
def test_merged_shards_give_the_verdict_of_one_machine_on_the_same_boots(tmp_path, series,
                                                                        code):
    one = run_ci(_machine(tmp_path, "one"), _options(tmp_path / "one-reports", series),
                 kernels=FakeKernels(tmp_path / "one"),
                 bench=RoundSeeded(_slower if series else None))
    merged = run_merge(_machine(tmp_path, "merge"), _shards(tmp_path, series),
                       tmp_path / "merged-reports")
    assert merged.exit_code == one.exit_code == code
    assert (merged.rounds, merged.stop_reason) == (one.rounds, one.stop_reason)
    columns = ["benchmark", "params", "metric", "verdict", "change", "ci_low", "ci_high",
               "rounds", "paired"]
    pd_one = one.comparisons[columns].sort_values(columns[:3]).reset_index(drop=True)
    pd_merged = merged.comparisons[columns].sort_values(columns[:3]).reset_index(drop=True)
    assert pd_merged.equals(pd_one)
    assert merged.line.split(":")[0] == one.line.split(":")[0]
    assert merged.summary.read_text().startswith(one.summary.read_text().split("(exit")[0])
    assert merged.report.exists() and merged.junit.exists()


def test_a_later_look_is_replayed_as_one_machine_would_take_it(tmp_path):
    """Noisier boots: the first look leaves the A/A undecided; both take the same later look."""
    noisy = dict(boot_cv=0.01, within_cv=0.004)
    one = run_ci(_machine(tmp_path, "one"), _options(tmp_path / "one-reports"),
                 kernels=FakeKernels(tmp_path / "one"), bench=RoundSeeded(seed=3, **noisy))
    merged = run_merge(_machine(tmp_path, "merge"),
                       _shards(tmp_path, bench=RoundSeeded(seed=3, **noisy)),
                       tmp_path / "merged-reports")
    assert one.rounds > 4, one.stop_reason  # the point of the test: a look after the first
    assert (merged.exit_code, merged.rounds, merged.stop_reason) == (
        one.exit_code, one.rounds, one.stop_reason)


def test_round_order_and_pairing_survive_sharding(tmp_path, made):
    dirs, bench = _four_rounds(tmp_path, made), made[1]
    seen = sorted((b["ci_round"], b["ci_position"], b["ci_role"]) for b in bench.boots)
    assert seen == [(0, 0, "baseline"), (0, 1, "candidate"), (1, 0, "candidate"),
                    (1, 1, "baseline"), (2, 0, "baseline"), (2, 1, "candidate"),
                    (3, 0, "candidate"), (3, 1, "baseline")]
    merged = run_merge(_machine(tmp_path, "merge"), dirs, tmp_path / "merged")
    assert merged.comparisons["paired"].all() and merged.rounds == 4


def test_a_directory_holding_the_shards_is_merged_too(tmp_path, made):
    _four_rounds(tmp_path, made)
    merged = run_merge(_machine(tmp_path, "merge"), [tmp_path / "artifacts"], tmp_path / "m")
    assert merged.exit_code == EXIT_OK and merged.rounds == 4


# --- what the merge refuses, by name -------------------------------------------------------


@pytest.mark.parametrize("change,named", [
    (lambda r: r["design"].update(accel="tcg"), "design.accel 'tcg', not 'icount'"),
    (lambda r: r["fingerprint"].update(accel="tcg"), "in accel: 'tcg', not 'icount'"),
    (lambda r: r["fingerprint"]["kernels"]["candidate/0"].update(kernel_key="0" * 16),
     "kernels.candidate/0.kernel_key"),
    (lambda r: r["fingerprint"].update(qemu_version="QEMU emulator version 8.2.2"),
     "qemu_version"),
    (lambda r: r["design"].update(threshold=0.1), "design.threshold"),
], ids=["accel", "accel-measured", "kernel", "qemu", "threshold"])
def test_a_shard_of_another_setup_is_refused_naming_the_field(tmp_path, change, named, made):
    dirs = _four_rounds(tmp_path, made)
    _edit(dirs[1], change)
    runs = _machine(tmp_path, "merge").runs_dir
    with pytest.raises(InputError, match="shard 2/2") as caught:
        run_merge(_machine(tmp_path, "merge"), dirs, tmp_path / "m")
    assert named in str(caught.value)
    assert not runs.exists()  # refused before anything was taken in


def test_another_host_is_merged_under_icount_and_refused_under_tcg(tmp_path, made):
    dirs = _four_rounds(tmp_path / "icount", made)
    _edit(dirs[1], lambda r: r["fingerprint"].update(host="runner-b", cpu_model="Other CPU"))
    steps = []
    progress = Silent()
    progress.step = steps.append  # type: ignore[method-assign]
    merged = run_merge(_machine(tmp_path, "m1"), dirs, tmp_path / "m1", progress=progress)
    assert merged.exit_code == EXIT_OK
    assert any("from 2 host(s)" in s and "runner-b (Other CPU)" in s for s in steps), steps
    dirs = _shards(tmp_path / "tcg", rounds=4, accel="tcg")
    _edit(dirs[1], lambda r: r["fingerprint"].update(host="runner-b"))
    with pytest.raises(InputError, match="in host: 'runner-b'.*depends on its host"):
        run_merge(_machine(tmp_path, "m2"), dirs, tmp_path / "m2")


def test_a_missing_or_doubled_shard_is_refused(tmp_path, made):
    dirs = _four_rounds(tmp_path, made)
    with pytest.raises(InputError, match="missing 2"):
        run_merge(_machine(tmp_path, "m"), dirs[:1], tmp_path / "m")
    with pytest.raises(InputError, match="given twice 1"):
        run_merge(_machine(tmp_path, "m"), [dirs[0], dirs[0]], tmp_path / "m")
    with pytest.raises(InputError, match="neither a shard directory"):
        run_merge(_machine(tmp_path, "m"), [tmp_path / "nowhere"], tmp_path / "m")


def test_a_corrupt_shard_leaves_the_runs_directory_untouched(tmp_path, made):
    dirs = _four_rounds(tmp_path, made)
    merge = _machine(tmp_path, "merge")
    merge.runs_dir.mkdir(parents=True)
    (merge.runs_dir / "history.jsonl").write_text("")
    victim = next((dirs[1] / "runs").iterdir()) / "results.parquet"
    victim.write_bytes(b"not parquet")
    with pytest.raises(ResultsError, match="results.parquet"):
        run_merge(merge, dirs, tmp_path / "m")
    assert [p.name for p in merge.runs_dir.iterdir()] == ["history.jsonl"]
    (dirs[0] / SHARD_FILE).write_text("{not json")
    with pytest.raises(ResultsError, match="unreadable shard record"):
        run_merge(merge, dirs, tmp_path / "m")


def test_a_shard_stopped_short_of_the_first_look_is_refused(tmp_path, made):
    dirs = _four_rounds(tmp_path, made)
    _edit(dirs[1], lambda r: r.update(rounds=r["rounds"][:1]))
    with pytest.raises(InputError, match="hold 3 complete rounds; the first look needs 4"):
        run_merge(_machine(tmp_path, "m"), dirs, tmp_path / "m")


def test_a_shard_directory_is_written_once(tmp_path, made):
    _four_rounds(tmp_path, made)
    with pytest.raises(InputError, match="shard-1-of-2 exists"):
        run_shard(_machine(tmp_path, "again"), _options(tmp_path / "artifacts", rounds=4),
                  "1/2", kernels=FakeKernels(tmp_path / "again"), bench=RoundSeeded())


# --- what the command prints ---------------------------------------------------------------


def test_a_shard_prints_where_its_boots_went_and_no_verdict(tmp_path, capsys):
    code = shard_gate(_machine(tmp_path, "r1"), _options(tmp_path / "artifacts", rounds=4),
                      "2/2", kernels=FakeKernels(tmp_path / "r1"), bench=RoundSeeded(),
                      progress=Silent())
    out = capsys.readouterr().out
    assert code == EXIT_OK and "shard 2/2 booted rounds 3, 4 of the design" in out
    assert "no verdict from one shard" in out and "OK" not in out
    assert max(len(line) for line in out.splitlines() if not line.startswith("shard:")) <= 80
    assert "shard:  " + str(tmp_path / "artifacts" / "shard-2-of-2") in out


def test_a_refused_merge_is_exit_2_with_the_reason(tmp_path, capsys, made):
    dirs = _four_rounds(tmp_path, made)
    shutil.rmtree(dirs[1])
    code = report_gate(lambda p: run_merge(_machine(tmp_path, "m"), dirs, tmp_path / "m",
                                           progress=p), Silent())
    out = capsys.readouterr().out
    assert code == 2 and "INFRASTRUCTURE FAILURE (exit 2)" in out and "shard-2-of-2" in out
