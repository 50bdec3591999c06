"""How fast do ``wb --help``, ``wb --list`` and ``wb runs`` start? Issue 30's target: at
most 300 ms each. Prints the median wall time of N runs of each, against ``python -c
pass`` (the interpreter's own start, which no change of ours can remove), and whether
each meets the target.

Each command is run three ways: through the checkout's ``./wb`` launcher (bash, the
pyproject hash check, then Python), as the ``wb`` console script an install gives
(``.venv/bin/wb``: what ``pipx install`` runs), and as ``python -m
watchbench.cli.program`` (Python alone). ``wb runs`` lists a runs dir of ``--runs``
synthetic runs (manifests only, as it reads them) in a temporary directory. The package's
bytecode is compiled first: a machine with PYTHONDONTWRITEBYTECODE set (this one) would
otherwise compile every changed module at every start, which a user's first run (or pip,
for an install) does once.

    ./.venv/bin/python bench/scripts/startup_time.py [--repeat 15] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from watchbench.host.runner import default_runner

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 0.300
COMMANDS = (("--help",), ("--list",), ("runs",))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """The median wall time and CPU time (user + system, of the process and its children)
    of ``repeat`` runs of ``argv``; one untimed run first, so every timed run finds the
    files in the page cache. On a loaded machine the wall time waits for a core; the CPU
    time is what the command itself costs."""
    default_runner.run(argv, env=env, cwd=ROOT, timeout=60)
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _cpu(), time.perf_counter()
        default_runner.run(argv, env=env, cwd=ROOT, timeout=60)
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def fake_runs(runs_dir: Path, count: int) -> None:
    """``count`` run directories with a manifest each (what ``wb runs`` reads)."""
    for number in range(count):
        run = runs_dir / f"20261207T{number:06d}-c54a9bb4-{number:08x}"
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(json.dumps({
            "schema_version": 1, "run_id": run.name, "timestamp": "2026-12-07T00:50:01Z",
            "accel": "icount", "kernel_version": "6.12.117+", "series_name": "watch_queue-bench",
            "base_label": "debian linux-source-6.12 6.12.117-1~deb12u1", "suite": "ci",
            "label": "baseline", "kernel_key": "c54a9bb4e6a46bfe"}))
        (run / "results.parquet").write_bytes(b"")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per command")
    parser.add_argument("--runs", type=int, default=200, help="stored runs `wb runs` lists")
    args = parser.parse_args()
    python = str(ROOT / ".venv" / "bin" / "python")
    ways = {"./wb": [str(ROOT / "wb")], "wb (installed)": [str(ROOT / ".venv" / "bin" / "wb")],
            "python -m": [python, "-m", "watchbench.cli.program"]}
    default_runner.run([python, "-m", "compileall", "-q", str(ROOT / "watchbench")], timeout=300)
    with tempfile.TemporaryDirectory() as tmp:
        fake_runs(Path(tmp) / "runs", args.runs)
        env = {"INVOKE_WATCHBENCH_RUNS_DIR": str(Path(tmp) / "runs"),
               "INVOKE_WATCHBENCH_CACHE_DIR": str(Path(tmp) / "cache")}
        base, base_cpu = timed([python, "-c", "pass"], env, args.repeat)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"median of {args.repeat} runs; target <= {TARGET_S * 1000:.0f} ms; "
              f"{args.runs} stored runs for `runs`; load average {load}")
        print(f"{'command':26} {'wall':>7} {'over python':>12} {'cpu':>7}")
        print(f"{'python -c pass':26} {base * 1000:4.0f} ms {'':>12} {base_cpu * 1000:4.0f} ms")
        worst = 0.0
        for name, prefix in ways.items():
            for command in COMMANDS:
                took, cpu = timed([*prefix, *command], env, args.repeat)
                worst = max(worst, took)
                verdict = "ok" if took <= TARGET_S else "OVER"
                print(f"{name + ' ' + ' '.join(command):26} {took * 1000:4.0f} ms "
                      f"{(took - base) * 1000:+9.0f} ms {cpu * 1000:4.0f} ms  {verdict}")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
