"""`./wb test`: the two tiers' pytest arguments and the counts read from their closing
lines (a real run of both tiers is CI's own `./wb test`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import SIDE_MODULES, tree_group
from watchbench.cli.host import Tier, counts, tier_argv, tier_env
from watchbench.host.runner import default_runner

ROOT = Path(__file__).resolve().parents[2]


def test_the_fast_tier_spreads_over_the_cores_and_the_kernel_tier_over_its_two_trees():
    """The fast tier: one worker more than the cores it may use (it waits on subprocesses
    part of its time)."""
    cores = len(os.sched_getaffinity(0))
    assert tier_argv(Tier.FAST, None, "") == ["-m", "not kernel", "-n", str(cores + 1)]
    assert tier_argv(Tier.KERNEL, "boot", "--durations=5 -x") == [
        "-m", "kernel", "-n", "2", "--dist", "loadgroup", "-k", "boot", "--durations=5", "-x"]


def test_the_tiers_keep_bytecode_beside_the_sources(tmp_path, monkeypatch):
    """Under PYTHONDONTWRITEBYTECODE (as here), a tier's processes still keep compiled
    modules, so the next process (a worker, an `inv` a test starts) reads them instead of
    compiling again; in __pycache__, which git ignores."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    (tmp_path / "probe_mod.py").write_text("VALUE = 1\n")
    argv = ["python3", "-c", "import probe_mod"]
    default_runner.run(argv, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert not list(tmp_path.rglob("*.pyc"))  # the variable as set: nothing written
    default_runner.run(argv, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), **tier_env()})
    assert list((tmp_path / "__pycache__").glob("probe_mod.*.pyc"))
    paths = ["watchbench/__pycache__/x.pyc", "tests/unit/__pycache__/x.pyc"]
    ignored = default_runner.run(["git", "check-ignore", *paths], cwd=ROOT, check=False)
    assert ignored.stdout.split() == paths


def test_the_side_group_leaves_the_debian_tree_to_the_other_worker():
    """A module in the "side" group must never compose on the Debian tree: its worker
    runs beside the one that does."""
    integration = Path(__file__).resolve().parents[1] / "integration"
    modules = {p.stem for p in integration.glob("test_*.py")}
    assert SIDE_MODULES <= modules
    assert {tree_group(m) for m in modules} == {"side", "debian"}
    assert tree_group("test_check_integration") == "side" == tree_group("test_ci_integration")
    for name in SIDE_MODULES:
        text = (integration / f"{name}.py").read_text()
        for fixture in ("debian_tree", "clean_tree", "bench_tree", "bench_kernel", "guest"):
            assert not re.search(rf"\b{fixture}\b", text), (name, fixture)


@pytest.mark.parametrize("closing,expected", [
    ("=========== 817 passed, 51 deselected in 181.38s (0:03:01) ===========",
     {"passed": 817}),
    ("==== 2 failed, 47 passed, 1 skipped, 3 errors in 1500.02s (0:25:00) ====",
     {"passed": 47, "failed": 2, "skipped": 1, "errors": 3}),
    ("============ 1 error in 0.52s ============", {"errors": 1}),
    ("======== 868 deselected in 0.30s ========", {}),
])
def test_counts_come_from_the_last_closing_line(closing, expected):
    output = f"tests/unit/x.py ....\n===== 9 passed in 1.00s =====\nnoise\n{closing}\n"
    assert dict(counts(output)) == expected


def test_output_without_a_closing_line_counts_nothing():
    assert not counts("ImportError while loading conftest\n")
