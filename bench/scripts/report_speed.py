"""How long does a report over 1,000,000 samples take? Prints rows and seconds.

Writes synthetic runs shaped like a real one to a temporary directory: the recorded quick
suite run in tests/data/results/quick-icount (every benchmark, its real params and
metrics, so the headline, sweeps and case tables all have work), each sample repeated
with lognormal noise until the runs hold ``--rows`` in all, over ten kernels, a per-patch
series and a baseline/candidate pair. Then times ``load_runs`` and ``write_report``.

    ./.venv/bin/python bench/scripts/report_speed.py [--rows 1000000] [--runs 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from watchbench.report import write_report
from watchbench.results import ingest_run, load_runs
from watchbench.results.rundir import RESULTS_FILE
from watchbench.results.store import write_results

RECORDED = Path(__file__).resolve().parents[2] / "tests" / "data" / "results" / "quick-icount"


def recorded_run(tmp: Path) -> pd.DataFrame:
    """One boot of the recorded quick suite, ingested from its raw records."""
    runs = tmp / "recorded"
    shutil.copytree(RECORDED, runs)
    for run in sorted(runs.iterdir()):
        ingest_run(run)
    df = load_runs(runs)
    first = sorted(df["run_id"].unique())[0]
    return df[df["run_id"] == first].reset_index(drop=True)


def synthetic_run(template: pd.DataFrame, index: int, rows: int,
                  rng: np.random.Generator) -> pd.DataFrame:
    """``template``'s samples repeated to about ``rows`` rows, each with lognormal noise
    and a boot effect; kernels, patches and labels assigned by ``index``."""
    repeat = max(1, rows // len(template))
    df = template.loc[template.index.repeat(repeat)].reset_index(drop=True)
    df["iteration"] = np.tile(np.arange(repeat), len(template)) if len(template) else []
    kernel = index % 10
    patch = index % 5 if index < 10 else pd.NA
    label = "baseline" if index >= 40 and index % 2 == 0 else "candidate" if index >= 40 else ""
    slow = 1.03 if label == "candidate" else 1.0
    lower = (df["direction"].astype(str) == "lower").to_numpy()
    scale = np.where(lower, slow, 1 / slow) * (1 + 0.01 * kernel) * rng.lognormal(0, 0.01)
    ok = (df["status"].astype(str) == "ok").to_numpy()
    noise = np.where(ok, rng.lognormal(0.0, 0.02, len(df)), 1.0)
    df["value"] = df["value"].to_numpy(float) * scale * noise
    df = df.assign(
        run_id=f"run-{index:03d}",
        timestamp=pd.Timestamp("2026-06-01", tz="UTC") + pd.Timedelta(hours=index),
        series_name="wq-rework" if kernel else "watch_queue-bench",
        series_hash=hashlib.sha1(bytes([kernel])).hexdigest()[:16],
        label=label, patch_index=patch,
        patch_subject=f"watch_queue: step {patch}" if patch is not pd.NA else "",
    )
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", type=Path, help="write runs and report here instead of a tmp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        runs_dir = root / "runs"
        rng = np.random.default_rng(7)
        template = recorded_run(root)
        for i in range(args.runs):
            run = runs_dir / f"run-{i:03d}"
            run.mkdir(parents=True, exist_ok=True)
            write_results(synthetic_run(template, i, args.rows // args.runs, rng),
                          run / RESULTS_FILE)
        start = time.perf_counter()
        df = load_runs(runs_dir)
        loaded = time.perf_counter()
        runs = df.groupby("label", observed=True)["run_id"].unique()
        html = write_report(df, root / "report", baseline=sorted(runs["baseline"]),
                            candidate=sorted(runs["candidate"]))
        done = time.perf_counter()
        size = html.stat().st_size / 1e6
        print(f"rows: {len(df):,}  runs: {df['run_id'].nunique()}")
        print(f"load_runs: {loaded - start:.2f} s  write_report: {done - loaded:.2f} s  "
              f"total: {done - start:.2f} s")
        print(f"index.html: {size:.2f} MB ({html})")


if __name__ == "__main__":
    main()
