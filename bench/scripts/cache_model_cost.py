#!/usr/bin/env python3
"""What the cache model costs: a cache-model profiled boot's wall time against a plain icount one.

An already built bench kernel (never a build: the newest kernel of the bench series in
--cache, or --kernel DIR, copied aside so that a prune cannot take it mid-run) booted
with a suite under icount --boots times each way, in turns (plain, profiled without the
model, profiled with it, plain, ...) so that drift and the host's load fall on all three.
Prints the date, the commit, the load average before and after, each boot's wall time
(QEMU started to powered off: the manifest's wall_seconds), the medians and their
ratios (the target: the model at most 3x a plain icount boot), the plugin's file size,
and how far the model's boots differ in est_cycles_per_op per case (a model, not a
measurement). Uses --cache's initramfs and plugin builds and a runs directory of its own.
Run:
  .venv/bin/python bench/scripts/cache_model_cost.py [--boots 3] [--suite ci]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path

from bench_kernel import TEST_CACHE  # beside this script

from watchbench.host.git import Git
from watchbench.host.progress import Progress
from watchbench.kernel.build import Kernel
from watchbench.results.profile import cases, read_profile
from watchbench.settings import PROJECT_ROOT, Settings
from watchbench.suite.run import run_bench
from watchbench.vm.plugin import OUTPUT

TARGET = 3.0  # issue 32: a boot with the cache model takes at most 3x a plain icount boot
# What a kernel needs to be booted and profiled (kernel.build keeps them together).
KERNEL_FILES = ("kernel.json", "bzImage", "System.map", "config")


class Way(StrEnum):
    """How a boot is taken."""

    PLAIN = "plain"  # icount, no plugin
    PROFILED = "profiled"  # icount with the plugin, the model off
    MODEL = "model"  # icount with the plugin and the cache model


def built_bench_kernel(cache: Path, series: str) -> Path:
    """The newest complete kernel of ``series`` in ``cache``; never builds one."""
    found = []
    for meta in (cache / "kernels").glob("*/kernel.json"):
        if all((meta.parent / f).is_file() for f in KERNEL_FILES):
            if json.loads(meta.read_text()).get("series") == series:
                found.append(meta.parent)
    if not found:
        raise SystemExit(f"no built {series} kernel in {cache}/kernels: this script never "
                         "builds one (give --kernel DIR)")
    return max(found, key=lambda d: (d / "bzImage").stat().st_mtime)


def copied(kernel_dir: Path, into: Path) -> Kernel:
    """The kernel's files in a directory of this run's own."""
    into.mkdir(parents=True)
    for name in KERNEL_FILES:
        shutil.copy2(kernel_dir / name, into / name)
    return replace(Kernel.load(into), dir=into)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def est_spread(tables: list) -> tuple[float, str]:
    """The largest relative difference in a case's est_cycles_per_op between the model's
    boots (0: every boot gave the same estimate for every case), and that case."""
    per_case = [cases(t).set_index(["benchmark", "params"])["est_cycles_per_op"] for t in tables]
    both = per_case[0].to_frame("a").join([s.rename(f"b{i}") for i, s in enumerate(per_case[1:])])
    spread = (both.max(axis=1) - both.min(axis=1)) / both.min(axis=1)
    worst = spread.idxmax()
    return float(spread.max()), f"{worst[0]} {worst[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=TEST_CACHE,
                        help="cache whose built kernels, initramfs and plugin are used")
    parser.add_argument("--kernel", help="a built kernel's directory (default: the newest "
                                         "bench kernel in --cache)")
    parser.add_argument("--boots", type=int, default=3, help="boots each way")
    parser.add_argument("--suite", default="ci", help="suite to boot")
    args = parser.parse_args()
    progress = Progress("cost")
    work = Path(tempfile.mkdtemp(prefix="wb-cache-model-cost-"))
    base = Settings()
    settings = replace(base.scratch(Path(args.cache), shared=("downloads", "ccache")),
                       runs_dir=work / "runs")
    source = Path(args.kernel) if args.kernel else built_bench_kernel(Path(args.cache),
                                                                      base.bench_series)
    kernel = copied(source, work / "kernel")
    model = replace(settings, profile=replace(settings.profile, cache_model="on"))
    ways = {Way.PLAIN: (settings, False), Way.PROFILED: (settings, True),
            Way.MODEL: (model, True)}
    git = Git(PROJECT_ROOT)
    commit = git.out("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)"
                                                         if git.dirty() else "")
    started, load_before = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load()
    run_bench(model, args.suite, "icount", kernel=kernel, profile=True)  # builds what is missing
    walls: dict[Way, list[float]] = {w: [] for w in Way}
    sizes: dict[Way, list[int]] = {Way.PROFILED: [], Way.MODEL: []}
    tables = []
    for i in range(args.boots):
        for way, (chosen, profile) in ways.items():
            progress.step(f"{way} {i + 1}/{args.boots}")
            run = run_bench(chosen, args.suite, "icount", kernel=kernel, profile=profile)
            walls[way].append(json.loads((run / "manifest.json").read_text())["wall_seconds"])
            if profile:
                sizes[way].append((run / "raw" / OUTPUT).stat().st_size)
            if way is Way.MODEL:
                tables.append(read_profile(run))
    med = {w: statistics.median(v) for w, v in walls.items()}
    ratio = med[Way.MODEL] / med[Way.PLAIN]
    print(f"cache model cost: {started}, commit {commit}")
    print(f"load average before: {load_before}")
    print(f"kernel {kernel.key[:12]} ({kernel.series[:30]}), suite {args.suite}, icount")
    print(f"{args.boots} boots each way, in turns")
    for way in Way:
        shown = " ".join(f"{w:.1f}" for w in walls[way])
        print(f"  {way:<9} wall s: {shown}  (median {med[way]:.1f})")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"  model / plain:    {ratio:.2f}x (target <= {TARGET:g}x: {verdict})")
    print(f"  model / profiled: {med[Way.MODEL] / med[Way.PROFILED]:.2f}x; "
          f"profiled / plain: {med[Way.PROFILED] / med[Way.PLAIN]:.2f}x")
    print(f"  plugin file: {statistics.median(sizes[Way.PROFILED]) / 1e6:.1f} MB profiled, "
          f"{statistics.median(sizes[Way.MODEL]) / 1e6:.1f} MB with the model")
    if len(tables) > 1:
        spread, case = est_spread(tables)
        print(f"  est_cycles_per_op (a model): the model's boots differ by up to "
              f"{spread:.2%}\n    in a case ({case[:66]})")
    print(f"load average after: {load()}")
    print(f"runs: {settings.runs_dir}")


if __name__ == "__main__":
    main()
