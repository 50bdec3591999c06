"""How long does a report over 1,000,000 samples take? Prints rows and seconds.

Writes synthetic runs (results.parquet files shaped like ingested ones: five benchmarks,
26 params/metric groups, ten kernels, a per-patch series, a baseline and a candidate) to a
temporary directory, then times ``load_runs`` and ``write_report`` over all of them.

    ./.venv/bin/python bench/scripts/report_speed.py [--rows 1000000] [--runs 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from watchbench.report import write_report
from watchbench.results import load_runs
from watchbench.results.rundir import RESULTS_FILE
from watchbench.results.schema import COLUMNS, SCHEMA_VERSION, coerce_types
from watchbench.results.store import write_results

# (benchmark, source, params, metric, unit, direction, typical value)
GROUPS = [
    *[("keyctl-post", "c", f"case={c}, filter={f}, queues={q}", m, u, d, v * (1.1 if
      c == "watched" else 1.0) * (1 + 0.05 * (q > 1)))
      for c in ("unwatched", "watched") for f in ("none", "type") for q in (1, 4)
      for m, u, d, v in (("ns_per_op", "ns", "lower", 1450.0),
                         ("ops_per_s", "op/s", "higher", 690_000.0))],
    *[("pipe-read", "c", f"batch={b}, buffer={s}", "ns_per_record", "ns", "lower", 350.0 / b)
      for b in (1, 16) for s in (16, 256)],
    *[("overflow", "c", f"queue_size={s}", "lost_ratio", "ratio", "lower", 16 / s)
      for s in (16, 256)],
    *[("kernel-post", "kernel", f"watchers={w}", "ns_per_op", "ns", "lower", 118.0 * w)
      for w in (1, 8)],
    *[("py-pipe-read", "python", f"size={s}", "ns_per_op", "ns", "lower", 1200.0 + s / 20)
      for s in (64, 4096)],
]


def synthetic_run(index: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """One run's table: every group gets an equal share of the rows, with lognormal noise."""
    sizes = [rows // len(GROUPS) + (i < rows % len(GROUPS)) for i in range(len(GROUPS))]
    kernel = index % 10
    patch = index % 5 if index < 10 else None
    label = "baseline" if index >= 40 and index % 2 == 0 else "candidate" if index >= 40 else ""
    frames = []
    slow = 1.03 if label == "candidate" else 1.0
    for size, (bench, source, params, metric, unit, direction, typical) in zip(
        sizes, GROUPS, strict=True
    ):
        scale = typical * (slow if direction == "lower" else 1 / slow) * (1 + 0.01 * kernel)
        frames.append(pd.DataFrame({
            "benchmark": bench, "source": source, "params": params, "metric": metric,
            "unit": unit, "direction": direction,
            "value": scale * rng.lognormal(0.0, 0.04, size),
            "iteration": np.arange(size),
        }))
    df = pd.concat(frames, ignore_index=True)
    df = df.assign(
        schema_version=SCHEMA_VERSION, run_id=f"run-{index:03d}",
        timestamp=pd.Timestamp("2025-06-01", tz="UTC") + pd.Timedelta(hours=index),
        host="bench-host", cpu_model="AMD EPYC 7B13", arch="x86_64", accel="tcg",
        qemu_argv_hash="3f2a9c1e0b7d4a55", kernel_version="6.12.117",
        tree_base="9b1e4c2d7a3f", base_label="debian-6.12.117-1~deb12u1",
        series_name="wq-rework" if kernel else "",
        series_hash=hashlib.sha1(bytes([kernel])).hexdigest()[:12] if kernel else "",
        config_hash="c0ffee12ab34", suite="full", label=label, patch_index=patch,
        patch_subject=f"watch_queue: step {patch}" if patch is not None else "",
        loops=100000, status="ok", reason="", raw_file="c-bench.jsonl",
    )
    return coerce_types(df[list(COLUMNS)])


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
        for i in range(args.runs):
            run = runs_dir / f"run-{i:03d}"
            run.mkdir(parents=True, exist_ok=True)
            write_results(synthetic_run(i, args.rows // args.runs, rng), run / RESULTS_FILE)
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
