"""The instruction-count profile for real: the plugin is built against the installed
QEMU's header, two profiled boots of the bench kernel give the same counts, and those
agree with icount's timings. (A gate profiled in full: the A/A rerun of
test_interrupt.py.)"""

from __future__ import annotations

import json

import pytest

from watchbench.results.profile import ASYNC, cases, read_insns, read_profile
from watchbench.stats.profilediff import profile_diff
from watchbench.suite.run import run_bench

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def profiled(test_settings, bench_kernel):
    return [run_bench(test_settings, "ci", "icount", kernel=bench_kernel, profile=True)
            for _ in range(2)]


def test_two_profiled_boots_count_the_same(profiled):
    a, b = (read_profile(run) for run in profiled)
    diff = profile_diff(a, b)
    assert not diff["changed"].any(), diff[diff["changed"]].head(20).to_string()
    exact = diff[~diff["interleaved"] & (diff["symbol"] != ASYNC)]
    assert (exact["delta"].abs() < 1e-9).mean() > 0.95
    manifest = json.loads((profiled[0] / "manifest.json").read_text())
    assert manifest["profiled"] is True and "nokaslr" in " ".join(manifest["qemu_argv"])
    assert "-plugin" in manifest["qemu_argv_full"]
    assert read_insns(profiled[0] / "raw" / "insns.txt").exited


def test_the_profile_agrees_with_icount_timing(profiled):
    """1 ns is 1 instruction under icount: the difference is what lies outside the
    markers (the clock reads) and the interrupts the profile keeps apart."""
    table = cases(read_profile(profiled[0]))
    gap = (table["total_per_op"] - table["ns_per_op"]).abs()
    # per op: at most the two clock reads of a timed interval (~40 instructions each)
    assert len(table) >= 10 and (gap < 0.2).all() and (gap / table["ns_per_op"] < 0.01).all(), \
        table.assign(gap=gap)
    free = read_profile(profiled[0])
    free = free[(free["benchmark"] == "kernel-post") & free["params"].str.contains("case=free")]
    assert free.iloc[0]["symbol"].startswith("post_one_notification")
