#!/usr/bin/env python3
"""What each part of the default kernel configuration costs in a cold build, and what it buys.

For each variant: allnoconfig + its fragments, an empty ccache and a fresh build dir, then one
boot that reports the CPUs and the clock source the guest ended up with. Variants:

  default          the configured fragments (base, watch_queue, guest-9p)
  no-9p            without guest-9p: no host Python in the guest (C benchmarks only)
  no-acpi-no-9p    also without ACPI (MP table instead; measured: the guest then has 1 CPU)

Uses a scratch cache (sharing only the download). Run:
  .venv/bin/python bench/scripts/cold_build_variants.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path

from watchbench.guest.initramfs import GuestCommand
from watchbench.host.progress import Progress
from watchbench.kernel import patching
from watchbench.kernel.trees import fetch_debian, set_active
from watchbench.kernel.variant import Composer
from watchbench.settings import Settings
from watchbench.vm.boot import prepare

# Options of base.config that need ACPI; the no-ACPI variant leaves them out.
NEEDS_ACPI = ("ACPI", "X86_PM_TIMER", "SERIAL_8250_PNP")
PROBE = "nproc; cat /sys/devices/system/clocksource/clocksource0/current_clocksource"


def base_without_acpi(settings: Settings, scratch: Path) -> str:
    text = (settings.project_root / "kconfig" / "base.config").read_text()
    drop = re.compile("^CONFIG_(" + "|".join(NEEDS_ACPI) + ")=y$", re.M)
    path = scratch / "base-no-acpi.config"
    path.write_text(drop.sub("", text) + "CONFIG_X86_MPPARSE=y\n")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Settings().cache_dir) + "-variants",
                        help="scratch cache directory")
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()

    settings = Settings().scratch(Path(args.cache))
    progress = Progress("variants")
    tree = patching.reset(fetch_debian(settings, progress=progress), force=True)
    set_active(settings, tree)
    composer = Composer(settings, tree, progress=progress)
    variants = {
        "default": list(settings.fragments),
        "no-9p": ["base", "watch_queue"],
        "no-acpi-no-9p": [base_without_acpi(settings, settings.cache_dir), "watch_queue"],
    }
    rows = []
    for name, fragments in variants.items():
        if args.only and name not in args.only:
            continue
        shutil.rmtree(settings.cache_dir / "ccache", ignore_errors=True)
        shutil.rmtree(tree.root / "build", ignore_errors=True)
        shutil.rmtree(settings.cache_dir / "kernels", ignore_errors=True)
        start = time.monotonic()  # configure (a few seconds) + the cold build
        kernel = composer.kernel(None, fragments)
        seconds = time.monotonic() - start
        objects = sum(1 for _ in (tree.root / "build" / tree.config_hash).rglob("*.o"))
        guest = prepare(settings, "tcg", kernel, progress=progress).guest
        result = guest.run([GuestCommand(("sh", "-c", PROBE))], timeout=120)
        cpus, clock = (" ".join(result.commands[0].output).split() + ["?", "?"])[:2]
        rows.append((name, seconds, objects, cpus, clock))

    print(f"\n{'variant':16} {'cold build (s)':>14} {'.o files':>9} {'guest CPUs':>10}  clock source")
    for name, seconds, objects, cpus, clock in rows:
        print(f"{name:16} {seconds:14.0f} {objects:9} {cpus:>10}  {clock}")


if __name__ == "__main__":
    main()
