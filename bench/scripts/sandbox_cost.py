#!/usr/bin/env python3
"""What the sandbox costs (docs/security.md; targets: an incremental build within 5 %, a
boot within 0.2 s).

  build   the default kernel of the test cache's Debian tree, built in a build directory
          of its own beside the tree's usual one, then rebuilt incrementally (one object
          removed: a ccache hit and the relink), in turns with and without bubblewrap
  boot    that kernel booted under TCG with one host-side command (`true`), in turns with
          the host side's narrow view (the pipeline's) and the host's whole / (the old one)

Medians of ``--repeats`` turns each. The tree is only read; the build directory is
removed at the end. Run:
  .venv/bin/python bench/scripts/sandbox_cost.py [--repeats 5] [--skip-boot]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
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

TOUCHED = Path("kernel") / "watch_queue.o"  # removed before each incremental build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Settings().cache_dir) + "-tests",
                        help="cache whose Debian tree is used (its ccache is the warm one)")
    parser.add_argument("--repeats", type=int, default=5, help="turns of each kind")
    parser.add_argument("--skip-boot", action="store_true", help="leave out the boots")
    args = parser.parse_args()
    settings = Settings().scratch(Path(args.cache), shared=("downloads", "ccache"))
    progress = Progress("sandbox")
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

    try:
        progress.step(f"first build into {out} (warm ccache: a few minutes)")
        make(True).build("bzImage", logs / "first.log")
        times: dict[bool, list[float]] = {True: [], False: []}
        for turn in range(args.repeats):
            for sandboxed in (turn % 2 == 0, turn % 2 == 1):  # ABBA: neither always first
                (out / TOUCHED).unlink(missing_ok=True)
                start = time.monotonic()
                make(sandboxed).build("bzImage", logs / f"{turn}-{sandboxed}.log")
                times[sandboxed].append(time.monotonic() - start)
                progress.step(f"incremental, {'sandboxed' if sandboxed else 'plain'}: "
                              f"{times[sandboxed][-1]:.1f} s")
        plain, boxed = statistics.median(times[False]), statistics.median(times[True])
        rows = [("incremental build", plain, boxed, f"{(boxed / plain - 1):+.1%}", "<= +5 %")]

        if not args.skip_boot:
            image = out / "arch" / "x86" / "boot" / "bzImage"
            guest = Guest(image, base_initramfs(settings), "tcg", settings.cache_dir,
                          settings.qemu.cpus, settings.qemu.memory_mb, settings.project_root)
            boots: dict[View, list[float]] = {View.WHOLE: [], View.NARROW: []}
            for turn in range(args.repeats):
                order = (View.NARROW, View.WHOLE) if turn % 2 else (View.WHOLE, View.NARROW)
                for view in order:
                    result = replace(guest, view=view).run(
                        [GuestCommand(("true",), "host")], timeout=180)
                    boots[view].append(result.wall_seconds)
                    progress.step(f"boot, {view} view: {result.wall_seconds:.2f} s")
            whole = statistics.median(boots[View.WHOLE])
            narrow = statistics.median(boots[View.NARROW])
            rows.append(("boot (host side)", whole, narrow, f"{narrow - whole:+.2f} s",
                         "<= +0.2 s"))
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print(f"\nsandbox cost, median of {args.repeats} turns each, -j{settings.job_count}, "
          f"{tree.base_label}")
    print(f"{'':<20} {'without':>9} {'with':>9} {'cost':>9}  target")
    for name, without, with_, cost, target in rows:
        print(f"{name:<20} {without:>8.2f}s {with_:>8.2f}s {cost:>9}  {target}")


if __name__ == "__main__":
    main()
