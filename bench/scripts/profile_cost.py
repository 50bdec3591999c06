#!/usr/bin/env python3
"""What a profiled boot costs: wall time with the instruction-count plugin against without.

The bench kernel booted with a suite under icount, --boots times each way, alternating
(plain, profiled, plain, ...) so that drift falls on both. Prints each boot's wall time
(QEMU started to powered off, the manifest's wall_seconds), the medians and their ratio,
and the size of the plugin's file. Uses the test cache's tree (its kernels are reused) and
a runs directory of its own. Run:
  .venv/bin/python bench/scripts/profile_cost.py [--boots 4] [--suite ci]
"""

from __future__ import annotations

import argparse
import json
import statistics

from bench_kernel import TEST_CACHE, bench_kernel  # beside this script

from watchbench.host.progress import Progress
from watchbench.suite.run import run_bench
from watchbench.vm.plugin import OUTPUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=TEST_CACHE,
                        help="cache whose Debian tree and kernels are used")
    parser.add_argument("--boots", type=int, default=4, help="boots each way")
    parser.add_argument("--suite", default="ci", help="suite to boot")
    args = parser.parse_args()
    progress = Progress("cost")
    settings, kernel = bench_kernel(args.cache, "wb-profile-cost-", progress)
    run_bench(settings, args.suite, "icount", kernel=kernel, profile=True)  # builds the plugin
    walls: dict[bool, list[float]] = {False: [], True: []}
    sizes = []
    for i in range(args.boots):
        for profile in (False, True):
            progress.step(f"{'profiled' if profile else 'plain'} {i + 1}/{args.boots}")
            run = run_bench(settings, args.suite, "icount", kernel=kernel, profile=profile)
            walls[profile].append(json.loads((run / "manifest.json").read_text())["wall_seconds"])
            if profile:
                sizes.append((run / "raw" / OUTPUT).stat().st_size)
    plain, profiled = (statistics.median(walls[p]) for p in (False, True))
    print(f"suite {args.suite}, {args.boots} boots each way, icount, one at a time")
    for name, profile in (("plain", False), ("profiled", True)):
        shown = " ".join(f"{w:.1f}" for w in walls[profile])
        print(f"  {name:<9} wall s: {shown}  (median {statistics.median(walls[profile]):.1f})")
    print(f"  profiled / plain: {profiled / plain:.2f}x (+{profiled - plain:.1f} s a boot)")
    print(f"  plugin file: {statistics.median(sizes) / 1e6:.1f} MB a boot")


if __name__ == "__main__":
    main()
