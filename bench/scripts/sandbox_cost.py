#!/usr/bin/env python3
"""What the sandbox costs (docs/security.md; targets: an incremental build within 5 %, a
boot within 0.2 s).

  build   the default kernel of the Debian tree, in a cache of this script's own (it
          links the default cache's downloads and ccache, never a test cache's tree),
          built once, then rebuilt incrementally (one object removed: a ccache hit and
          the relink) with and without bubblewrap. Each timed build follows an untimed
          one of its own kind, so every timed turn starts from the same state whatever
          the turn before it did: without it, the first build of each pair took 6-7 s
          and the second 10-11 s, sandbox or not (docs/figures.md).
  boot    that kernel (or ``--kernel``) booted under TCG with one host-side command
          (``true``), with the host side's narrow view (the pipeline's) and the host's
          whole / (the old one). Each boot is timed around the whole call: preparing
          the view and the initramfs included.

Turns alternate the order (ABBA) so what drifts meanwhile falls on both kinds alike.
Prints the median of each kind, its spread (lowest-highest) and the load average before
and after. The build directory is removed at the end. Run:
  .venv/bin/python bench/scripts/sandbox_cost.py [--repeats 6] [--boot-repeats 12]
  .venv/bin/python bench/scripts/sandbox_cost.py --skip-build --kernel PATH/bzImage
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from watchbench.guest.hostview import View
from watchbench.guest.initramfs import GuestCommand, base_initramfs
from watchbench.host.progress import Progress
from watchbench.kernel import patching
from watchbench.kernel.configure import configure
from watchbench.kernel.kmake import KernelMake
from watchbench.kernel.trees import fetch_debian
from watchbench.settings import Settings
from watchbench.vm.session import Guest

TOUCHED = Path("kernel") / "watch_queue.o"  # removed before each timed build


def abba(repeats: int) -> list[bool]:
    """True/False turns, each pair's order the previous pair's reversed (ABBA ...)."""
    return [kind for turn in range(repeats)
            for kind in ((True, False) if turn % 2 == 0 else (False, True))]


def summary(times: list[float]) -> tuple[float, str]:
    """The median and the spread (lowest-highest) of some turns."""
    return statistics.median(times), f"{min(times):.2f}-{max(times):.2f}"


def timed(turns: list[bool], run: Callable[[bool], float], name: Callable[[bool], str],
          progress: Progress) -> dict[bool, list[float]]:
    """Each kind's times, in turn order (``turns[2i]`` and ``turns[2i+1]``: pair i)."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for kind in turns:
        times[kind].append(run(kind))
        progress.step(f"{name(kind)}: {times[kind][-1]:.2f} s")
    return times


def paired(times: dict[bool, list[float]], ratio: bool) -> float:
    """The median over pairs of turns of with/without - 1 (``ratio``) or with - without:
    the two turns of a pair ran one after the other, so a load that drifts over the
    run (a shared machine) weighs on both alike."""
    pairs = zip(times[True], times[False], strict=True)
    return statistics.median(w / wo - 1 if ratio else w - wo for w, wo in pairs)


def builds(settings: Settings, repeats: int, progress: Progress) -> tuple[tuple, Path, str]:
    """The incremental build's row, the image built and the tree's label."""
    tree = patching.reset(fetch_debian(settings, progress=progress), force=True)
    configure(tree, settings, list(settings.fragments))
    out = tree.root / "build" / "sandbox-cost"  # the usual depth: the same ccache keys
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copyfile(tree.root / "configs" / f"{tree.config_hash}.config", out / ".config")
    logs = out / "logs"

    def make(sandboxed: bool) -> KernelMake:
        return KernelMake(tree.src, out, jobs=settings.job_count,
                          ccache_dir=settings.cache_dir / "ccache",
                          ccache_basedir=settings.cache_dir, sandboxed=sandboxed)

    def build(sandboxed: bool) -> float:
        kind = "sandboxed" if sandboxed else "plain"
        make(sandboxed).build("bzImage", logs / f"warm-{kind}.log")  # untimed: same state
        (out / TOUCHED).unlink(missing_ok=True)
        start = time.monotonic()
        make(sandboxed).build("bzImage", logs / f"timed-{kind}.log")
        return time.monotonic() - start

    progress.step(f"first build into {out} (warm ccache: a few minutes)")
    make(True).build("bzImage", logs / "first.log")
    times = timed(abba(repeats), build,
                  lambda s: f"incremental, {'sandboxed' if s else 'plain'}", progress)
    (plain, plain_spread), (boxed, boxed_spread) = summary(times[False]), summary(times[True])
    row = ("incremental build", plain, plain_spread, boxed, boxed_spread,
           f"{(boxed / plain - 1):+.1%}", "<= +5 %", f"{paired(times, True):+.1%}")
    return row, out, tree.base_label


def boots(settings: Settings, image: Path, repeats: int, progress: Progress) -> tuple:
    """The boot's row: narrow view (True) against the whole / (False)."""
    guest = Guest(image, base_initramfs(settings), "tcg", settings.cache_dir,
                  settings.qemu.cpus, settings.qemu.memory_mb, settings.project_root)

    def boot(narrow: bool) -> float:
        start = time.monotonic()
        replace(guest, view=View.NARROW if narrow else View.WHOLE).run(
            [GuestCommand(("true",), "host")], timeout=180)
        return time.monotonic() - start

    boot(True)  # untimed: the base initramfs and the view's /etc archive are made once
    times = timed(abba(repeats), boot,
                  lambda n: f"boot, {'narrow' if n else 'whole'} view", progress)
    (whole, whole_spread), (narrow, narrow_spread) = summary(times[False]), summary(times[True])
    return ("boot (host side)", whole, whole_spread, narrow, narrow_spread,
            f"{narrow - whole:+.2f} s", "<= +0.2 s", f"{paired(times, False):+.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Settings().cache_dir) + "-sandbox-cost",
                        help="this script's cache (the default cache's downloads and "
                             "ccache are linked into it)")
    parser.add_argument("--repeats", type=int, default=6, help="build turns of each kind")
    parser.add_argument("--boot-repeats", type=int, default=12, help="boots of each kind")
    parser.add_argument("--skip-build", action="store_true", help="boots only (--kernel)")
    parser.add_argument("--skip-boot", action="store_true", help="builds only")
    parser.add_argument("--kernel", type=Path, help="boot this bzImage, not the one built")
    args = parser.parse_args()
    if args.skip_build and not args.kernel and not args.skip_boot:
        parser.error("--skip-build needs --kernel (nothing is built to boot)")
    settings = Settings().scratch(Path(args.cache), shared=("downloads", "ccache"))
    progress = Progress("sandbox")
    load_before = os.getloadavg()
    rows, label, out = [], "", None
    try:
        if not args.skip_build:
            row, out, label = builds(settings, args.repeats, progress)
            rows.append(row)
        if not args.skip_boot:
            image = args.kernel or out / "arch" / "x86" / "boot" / "bzImage"
            rows.append(boots(settings, image, args.boot_repeats, progress))
    finally:
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
    load_after = os.getloadavg()

    print(f"\nsandbox cost, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
          f"-j{settings.job_count} {label}".rstrip())
    counts = ([] if args.skip_build else [f"{args.repeats} build turns"]) + \
        ([] if args.skip_boot else [f"{args.boot_repeats} boots"])
    print(f"medians of {' and '.join(counts)} of each kind (spread: lowest-highest)")
    print(f"{'':<18} {'without':>8} {'spread':>11} {'with':>8} {'spread':>11} "
          f"{'cost':>7}  target")
    for name, without, w_spread, with_, spread, cost, target, _ in rows:
        print(f"{name:<18} {without:>7.2f}s {w_spread:>11} {with_:>7.2f}s {spread:>11} "
              f"{cost:>7}  {target}")
    print("cost within each pair of turns (median over the pairs; a drifting load "
          "cancels):")
    for row in rows:
        print(f"  {row[0]:<18} {row[-1]}")
    print("load average (1, 5, 15 min): before "
          + " ".join(f"{x:.2f}" for x in load_before) + ", after "
          + " ".join(f"{x:.2f}" for x in load_after))


if __name__ == "__main__":
    main()
