#!/usr/bin/env python3
"""Print the build/boot figures of issue 3, measured on this machine.

  cold build of the default configuration   (target <= 300 s; empty ccache, fresh build dir)
  incremental rebuild after editing kernel/watch_queue.c   (target <= 30 s)
  `vm.run -- true` wall time, busybox side   (target <= 4 s under TCG)
  a Python command through the 9p host root  (target <= 10 s under TCG)

Uses a scratch cache (a tree extraction is needed once) so the developer's cache is untouched,
except for the download, which is shared. Run: .venv/bin/python bench/scripts/pipeline_figures.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from watchbench.guest.initramfs import GuestCommand
from watchbench.host.progress import Progress
from watchbench.kernel import patching
from watchbench.kernel.configure import configure
from watchbench.kernel.trees import fetch_debian, set_active
from watchbench.kernel.variant import Composer
from watchbench.settings import Settings
from watchbench.vm.boot import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Settings().cache_dir) + "-figures",
                        help="scratch cache directory")
    parser.add_argument("--accel", default="tcg", help="accelerator for the boot figures")
    parser.add_argument("--skip-cold", action="store_true", help="reuse the existing build dir")
    args = parser.parse_args()

    settings = Settings().scratch(Path(args.cache))
    progress = Progress("figures")
    tree = patching.reset(fetch_debian(settings, progress=progress), force=True)
    set_active(settings, tree)
    composer = Composer(settings, tree, progress=progress)
    configure(tree, settings, list(settings.fragments))
    figures: list[tuple[str, float, float]] = []

    if not args.skip_cold:
        shutil.rmtree(settings.cache_dir / "ccache", ignore_errors=True)
        shutil.rmtree(tree.root / "build", ignore_errors=True)
        shutil.rmtree(settings.cache_dir / "kernels", ignore_errors=True)
        start = time.monotonic()
        composer.current()
        figures.append(("cold build, default config, empty ccache (s)", time.monotonic() - start, 300))

    source = tree.src / "kernel" / "watch_queue.c"
    original = source.read_bytes()
    try:
        probe = f"\n/* watchbench: incremental build probe {time.time_ns()} */\n"
        source.write_bytes(original + probe.encode())
        start = time.monotonic()
        composer.current()
        figures.append(("incremental after editing kernel/watch_queue.c (s)",
                        time.monotonic() - start, 30))
    finally:
        source.write_bytes(original)
        os.utime(source)
    prepared = prepare(settings, args.accel, progress=progress)
    guest = prepared.guest
    guest.run([GuestCommand(("true",))], timeout=120)  # warm the page cache once
    start = time.monotonic()
    guest.run([GuestCommand(("true",))], timeout=120)
    figures.append((f"vm.run -- true, busybox side, {guest.accel} (s)", time.monotonic() - start, 4))
    start = time.monotonic()
    result = guest.run([GuestCommand(("python", "-c", "import sys; print(sys.version)"), "host")],
                       timeout=240)
    figures.append((f"python -c through the 9p host root, {guest.accel} (s)",
                    time.monotonic() - start, 10))
    assert result.commands[0].returncode == 0, result.commands[0].output

    print(f"\nhost: {os.cpu_count()} CPUs; kernel {prepared.kernel.release}")
    for name, value, target in figures:
        verdict = "ok" if value <= target else "OVER TARGET"
        print(f"{name:58} {value:8.1f}   target <= {target:<5} {verdict}")


if __name__ == "__main__":
    main()
