"""`./wb test`: the two tiers' pytest arguments and the counts read from their closing
lines (a real run of both tiers is CI's own `./wb test`)."""

from __future__ import annotations

import pytest

from watchbench.cli.host import Tier, counts, tier_argv


def test_the_fast_tier_spreads_over_the_cores_and_the_kernel_tier_does_not():
    assert tier_argv(Tier.FAST, None, "") == ["-m", "not kernel", "-n", "auto"]
    assert tier_argv(Tier.KERNEL, "boot", "--durations=5 -x") == [
        "-m", "kernel", "-k", "boot", "--durations=5", "-x"]


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
