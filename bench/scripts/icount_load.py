#!/usr/bin/env python3
"""Do icount figures move with host load or CPU pinning? (`inv ci --jobs`, `--merge`)

The evidence behind booting icount guests side by side and merging icount shards taken in
other QEMU processes under other host conditions.

The bench kernel booted with the ci suite under icount, --boots times in each condition:

  alone    one guest at a time, nothing else running
  pair     two guests at once (what `inv ci --jobs 2` does); both boots are counted
  hog      one guest beside a busy loop on every host core
  pinned   one guest at a time, QEMU pinned to one host core (each core in turn)

For every metric of an ok case: the median per condition, the boot-to-boot spread when
alone ((max - min) / median), and each condition's shift from alone (|median - median
alone| / median alone). Uses the test cache's tree (its kernels are reused) and a runs
directory of its own. Run:
  .venv/bin/python bench/scripts/icount_load.py [--boots 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from bench_kernel import TEST_CACHE, bench_kernel  # beside this script

from watchbench.host.progress import Progress
from watchbench.host.runner import default_runner
from watchbench.results.schema import SERIES_KEYS
from watchbench.results.store import load_runs
from watchbench.suite.run import run_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=TEST_CACHE,
                        help="cache whose Debian tree and kernels are used")
    parser.add_argument("--boots", type=int, default=6, help="boots per condition")
    args = parser.parse_args()
    progress = Progress("icount")
    settings, kernel = bench_kernel(args.cache, "wb-icount-load-", progress)

    def boot(label: str) -> str:
        return run_bench(settings, "ci", "icount", label=label, kernel=kernel).name

    ids: dict[str, list[str]] = {"alone": [], "pair": [], "hog": [], "pinned": []}
    walls: dict[str, float] = {}
    start = time.monotonic()
    for i in range(args.boots):
        progress.step(f"alone {i + 1}/{args.boots}")
        ids["alone"].append(boot("alone"))
    walls["alone"] = time.monotonic() - start
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i in range(0, args.boots, 2):
            progress.step(f"pair {i // 2 + 1}/{(args.boots + 1) // 2}")
            ids["pair"] += list(pool.map(boot, ["pair", "pair"]))
    walls["pair"] = time.monotonic() - start
    hog = [default_runner.spawn([sys.executable, "-c", "while True: pass"])
           for _ in range(os.cpu_count() or 1)]
    try:
        start = time.monotonic()
        for i in range(args.boots):
            progress.step(f"hog {i + 1}/{args.boots}")
            ids["hog"].append(boot("hog"))
        walls["hog"] = time.monotonic() - start
    finally:
        for proc in hog:
            proc.kill()
    cores = sorted(os.sched_getaffinity(0))
    start = time.monotonic()
    for i in range(args.boots):
        core = cores[i % len(cores)]
        progress.step(f"pinned {i + 1}/{args.boots} (core {core})")
        os.sched_setaffinity(0, {core})  # QEMU inherits it
        try:
            ids["pinned"].append(boot("pinned"))
        finally:
            os.sched_setaffinity(0, cores)
    walls["pinned"] = time.monotonic() - start

    df = load_runs(settings.runs_dir)
    df = df[df["status"].astype(str) == "ok"]
    keys = [k for k in SERIES_KEYS if k in df.columns]
    boots = df.groupby([*keys, "run_id"], observed=True)["value"].median().reset_index()
    condition = {run: name for name, runs_ in ids.items() for run in runs_}
    boots["condition"] = boots["run_id"].astype(str).map(condition)
    med = boots.pivot_table(index=keys, columns="condition", values="value", aggfunc="median",
                            observed=True)
    alone = boots[boots["condition"] == "alone"].groupby(keys, observed=True)["value"]
    spread = (alone.max() - alone.min()) / alone.median()
    table = pd.DataFrame({"spread_alone": spread,
                          "shift_pair": (med["pair"] - med["alone"]).abs() / med["alone"],
                          "shift_hog": (med["hog"] - med["alone"]).abs() / med["alone"],
                          "shift_pinned": (med["pinned"] - med["alone"]).abs() / med["alone"]})
    print(f"\n{len(table)} metrics, {args.boots} boots per condition; wall: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()))
    print(f"{'':<22}{'median':>9}{'max':>9}")
    for column in table.columns:
        print(f"{column:<22}{table[column].median():>9.3%}{table[column].max():>9.3%}")
    worst = table.sort_values("shift_pair", ascending=False).head(8)
    print("\nlargest pair shifts:")
    for index, row in worst.iterrows():
        name = " ".join(str(x) for x in (index if isinstance(index, tuple) else (index,)))[:52]
        print(f"  {name:<52} pair {row.shift_pair:7.3%}  alone spread {row.spread_alone:7.3%}")


if __name__ == "__main__":
    main()
