"""Terminal number formatting and the gate's noise table."""

from __future__ import annotations

from tests.boots import boots_frame, runs
from watchbench.report.text import fmt_short, noise_table
from watchbench.stats.compare import compare_frames


def test_fmt_short_uses_the_unit_of_its_suffix():
    assert fmt_short(892857.0) == "892.9k"
    assert fmt_short(12345.0) == "12.35k"
    assert fmt_short(9999.0) == "9999"
    assert fmt_short(2.5e6) == "2.5M" and fmt_short(3.2e9) == "3.2G"


def test_noise_table_lists_gated_metrics_only_and_fits_80_columns():
    keys = {("pipe-read", "pipe=notification, read_size=64", "ns_per_record"): 400.0,
            ("pipe-read", "pipe=notification, read_size=64", "records_per_s"): 2.5e6,
            ("pipe-read", "pipe=plain, read_size=64", "ns_per_record"): 300.0}
    df = boots_frame({"a": keys, "b": keys}, rounds=4, boot_cv=0.01, within_cv=0.02)
    text = noise_table(compare_frames(df, runs(df, "a"), runs(df, "b")))
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if line.startswith("pipe-read")]
    assert len(rows) == 2  # records_per_s is display only
    assert all(line.split()[-1] == "4" for line in rows)  # decided after 4 rounds
