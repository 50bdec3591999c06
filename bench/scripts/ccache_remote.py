#!/usr/bin/env python3
"""What a shared remote ccache saves: the default kernel built three ways, each in a build
directory of its own beside the tree's usual one.

  cold          an empty local cache, no remote (a fresh CI runner today)
  warm-local    the machine's warm local cache; with reshare it fills the remote as it goes
  remote        an empty local cache again, with the remote the warm build filled

The remote is a real redis-server (Debian's) on 127.0.0.1, started here and stopped at the
end. Run:
  .venv/bin/python bench/scripts/ccache_remote.py [--skip-cold]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time
from pathlib import Path

from watchbench.host.progress import Progress
from watchbench.host.runner import default_runner
from watchbench.kernel import ccache, patching
from watchbench.kernel.configure import configure
from watchbench.kernel.kmake import KernelMake
from watchbench.kernel.trees import fetch_debian
from watchbench.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Settings().cache_dir) + "-tests",
                        help="cache whose Debian tree is used (its ccache is the warm one)")
    parser.add_argument("--skip-cold", action="store_true", help="leave out the cold build")
    args = parser.parse_args()
    settings = Settings().scratch(Path(args.cache), shared=("downloads", "ccache"))
    progress = Progress("ccache")
    tree = patching.reset(fetch_debian(settings, progress=progress), force=True)
    configure(tree, settings, list(settings.fragments))
    scratch = Path(tempfile.mkdtemp(prefix="wb-ccache-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = f"redis://127.0.0.1:{port}"
    redis = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(scratch)]
    plan = [("cold", scratch / "cold-ccache", "", False),
            ("warm-local", settings.cache_dir / "ccache", remote, True),
            ("remote", scratch / "empty-ccache", remote, False)]
    rows = []
    with default_runner.spawn(redis, log=scratch / "redis.log") as server:
        for line in server.lines():
            if line and "Ready to accept connections" in line:
                break
        for name, cache_dir, remote_entry, reshare in plan:
            if name == "cold" and args.skip_cold:
                continue
            out = tree.root / "build" / f"ccache-{name}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            shutil.copyfile(tree.root / "configs" / f"{tree.config_hash}.config", out / ".config")
            make = KernelMake(tree.src, out, jobs=settings.job_count, ccache_dir=cache_dir,
                              ccache_basedir=settings.cache_dir, ccache_remote=remote_entry,
                              ccache_reshare=reshare)
            progress.step(f"{name}: building into {out}")
            before = ccache.read_stats(cache_dir)
            start = time.monotonic()
            make.build("bzImage", scratch / f"{name}.log")
            seconds = time.monotonic() - start
            stats = ccache.read_stats(cache_dir) - before
            rows.append((name, seconds, stats))
            progress.step(f"{name}: {seconds:.0f} s, {stats.describe()}")
            shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\ndefault kernel, -j{settings.job_count}, {tree.base_label}")
    print(f"{'build':<12} {'wall':>7}  {'local hits':>10}  {'remote hits':>11}")
    for name, seconds, stats in rows:
        local = f"{stats.local_rate:.0%}" if stats.local_rate is not None else "-"
        far = f"{stats.remote_rate:.0%}" if stats.remote_rate is not None else "-"
        print(f"{name:<12} {seconds:>6.0f}s  {local:>10}  {far:>11}")


if __name__ == "__main__":
    main()
