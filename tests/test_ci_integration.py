"""`inv ci` for real under icount: a deliberately slower post path is caught, A/A is quiet."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from watchbench.ci import EXIT_OK, EXIT_REGRESSED, CiOptions, attribute, run_ci
from watchbench.progress import Silent

pytestmark = pytest.mark.kernel
SLOW = Path(__file__).resolve().parent / "data" / "patches" / "slow-post"


def test_slow_post_series_regresses_and_patch_2_is_named(test_settings, tmp_path):
    options = CiOptions(series=str(SLOW), rounds=3, accel="icount", per_patch=True,
                        out=tmp_path / "reports")
    result = run_ci(test_settings, options, progress=Silent())
    assert result.exit_code == EXIT_REGRESSED
    assert any(r.startswith("kernel-post") and "case=free" in r and "ns_per_op" in r
               for r in result.regressed), result.regressed
    assert any(r.startswith("keyctl-post") and "case=watched" in r for r in result.regressed)
    assert not any("case=none" in r or "pipe-read" in r for r in result.regressed)
    lines = attribute(result.per_patch, result.regressed)
    assert lines and all(line.lstrip().startswith("patch 2 ") for line in lines), lines
    suite = ET.parse(result.junit).getroot()
    assert int(suite.get("failures") or suite[0].get("failures")) >= 2
    assert "REGRESSED" in result.summary.read_text().splitlines()[0]
    assert result.report.exists()


def test_aa_same_kernel_is_not_a_regression(test_settings, tmp_path):
    options = CiOptions(series="", rounds=3, accel="icount", out=tmp_path / "reports")
    result = run_ci(test_settings, options, progress=Silent())
    assert result.exit_code == EXIT_OK, result.regressed
    verdicts = set(result.comparisons["verdict"])
    assert "regressed" not in verdicts and "improved" not in verdicts
