#!/usr/bin/env python3
"""How long the test suite takes: the fast tier, and the whole of `.ci/run` from a fresh
clone with empty caches, then again with the caches that run left (warm).

"Empty caches" without touching yours: the fresh clone runs with XDG_CACHE_HOME and
XDG_DATA_HOME pointed at new directories, so the kernel download, the trees, ccache, pip's
cache and the test cache all start empty, as on a new CI machine (the Debian packages
`./wb deps` installs are the machine's, as they are for CI). Every figure is printed with
the date, the commit and the machine, and each run's log and pytest's slowest tests are
kept under --work. Targets (README, docs): fast <= 90 s, cold <= 30 min, warm <= 12 min.

  .venv/bin/python bench/scripts/suite_times.py --fast          # about a minute
  .venv/bin/python bench/scripts/suite_times.py --cold --warm   # about 40 minutes
  .venv/bin/python bench/scripts/suite_times.py --warm          # the clone moved to HEAD
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import time
from pathlib import Path

from watchbench.errors import CommandError
from watchbench.host.git import Git
from watchbench.host.runner import default_runner

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"fast": 90, "cold": 30 * 60, "warm": 12 * 60}
SUMMARY = re.compile(r"^=+ (.*(passed|failed).*) in [\d.]+s", re.M)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return f"{os.cpu_count()} cores, {cpu}"


def timed(name: str, argv: list[str], cwd: Path, env: dict[str, str], log: Path
          ) -> tuple[float, int, str]:
    """Run ``argv``, its output to ``log``, printing each test file as pytest reaches it
    (with the minutes so far). Returns (seconds, exit code, pytest's closing line)."""
    start = time.monotonic()

    def seen(line: str) -> None:
        if line.startswith("tests/"):
            print(f"  {name} {(time.monotonic() - start) / 60:5.1f} min  {line.split()[0]}"[:80],
                  flush=True)

    try:
        code = default_runner.stream(argv, cwd=cwd, env=env, log=log, on_line=seen,
                                     timeout=5400).returncode
    except CommandError as exc:  # a red suite is a figure too
        code = exc.returncode if exc.returncode is not None else -1
    seconds = time.monotonic() - start
    closing = SUMMARY.findall(log.read_text(errors="replace"))
    return seconds, code, closing[-1][0] if closing else "(no pytest summary)"


def report(name: str, seconds: float, code: int, closing: str) -> str:
    target = TARGETS[name]
    verdict = ("FAILED: no figure for" if code else "within" if seconds <= target else "OVER")
    return (f"{name:5} {seconds / 60:6.1f} min ({seconds:5.0f} s)  exit {code}  "
            f"{verdict} the {target / 60:.1f} min target  [{closing}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="time `./wb test --fast` here")
    parser.add_argument("--cold", action="store_true",
                        help="time .ci/run in a fresh clone with empty caches")
    parser.add_argument("--warm", action="store_true",
                        help="time .ci/run again in that clone, caches as the cold run left them")
    parser.add_argument("--at", default="HEAD",
                        help="the commit to time (default: this checkout's HEAD)")
    parser.add_argument("--work", default="/tmp/watchbench-suite-times",
                        help="where the clone, its caches and the logs go")
    args = parser.parse_args()
    if not (args.fast or args.cold or args.warm):
        parser.error("say what to time: --fast, --cold and/or --warm")
    work = Path(args.work)
    commit = Git(ROOT).out("rev-parse", "--short=12", args.at)
    lines = [f"suite times, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{machine()}"]
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "XDG_DATA_HOME")}
    if args.fast:
        work.mkdir(parents=True, exist_ok=True)
        lines[0] += f", fast at commit {commit}"
        lines.append(report("fast", *timed("fast", ["./wb", "test", "--fast"], ROOT, env,
                                           work / "fast.log")))
        print(lines[-1], flush=True)
    if args.cold or args.warm:
        clone, caches = work / "clone", work / "caches"
        if args.cold:
            for path in (clone, caches):
                shutil.rmtree(path, ignore_errors=True)
            caches.mkdir(parents=True)
            default_runner.run(["git", "clone", "-q", str(ROOT), str(clone)])
            default_runner.run(["git", "-C", str(clone), "checkout", "-q", commit])
        elif not clone.exists():
            parser.error(f"--warm alone needs the clone a --cold run left in {clone}")
        else:  # the caches the cold run left, the code of this commit
            default_runner.run(["git", "-C", str(clone), "fetch", "-q", str(ROOT), "HEAD"])
            default_runner.run(["git", "-C", str(clone), "reset", "-q", "--hard", commit])
        lines[0] += f", clone at commit {Git(clone).out('rev-parse', '--short=12', 'HEAD')}"
        fresh = {**env, "XDG_CACHE_HOME": str(caches / "cache"),
                 "XDG_DATA_HOME": str(caches / "data"), "CI": "true"}
        for name in ("cold", "warm"):
            if getattr(args, name):
                lines.append(report(name, *timed(name, ["bash", ".ci/run"], clone, fresh,
                                                  work / f"{name}.log")))
                print(lines[-1], flush=True)
    print("\n".join(lines))
    print(f"logs (with pytest's 25 slowest tests): {work}/*.log")


if __name__ == "__main__":
    main()
