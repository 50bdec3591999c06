#!/usr/bin/env python3
"""The plugin's cache model against Cachegrind: the same programs, the same caches.

Compiles bench/scripts/cache_patterns.c (static, -O2) and runs each of its access patterns
(a sequential walk and a strided walk over an array twice LL's size, a pointer chase in a
random order, a small hot loop, a long straight run of code) twice: under
``qemu-x86_64 -plugin wb-insns.so,cache=on,...`` and under ``valgrind --tool=cachegrind``
with the same --I1/--D1/--LL. The plugin counts the region between the program's begin
and end markers; Cachegrind's side is the counts of the function that holds that region
(``fn=measure_<pattern>`` in its output file: its own counts, the function calls
nothing), which is the region plus a few instructions of prologue and return. Prints, per
pattern, instructions, data references and I1, D1 and LL misses from both, their relative
difference, and whether each miss count is within the tolerance: |model - cachegrind| <=
max(TOLERANCE * cachegrind, SLACK). Exits 1 when one is not.

Binaries and outputs go to a directory under the watchbench cache (--work), never the
repository. Run:
  .venv/bin/python bench/scripts/cache_model_vs_cachegrind.py [--config default|small|all]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from watchbench.host.runner import default_runner
from watchbench.results.profile import cache_totals, read_insns
from watchbench.settings import Settings
from watchbench.vm import plugin
from watchbench.vm.cachemodel import DEFAULT, CacheConfig, Level, run_user

PATTERNS = ("seq", "stride", "chase", "hot", "code")
SOURCE = Path(__file__).resolve().parent / "cache_patterns.c"
CONFIGS = {"default": DEFAULT,
           # small, direct-mapped-ish caches: more conflict misses, another set count
           "small": CacheConfig(Level(8 << 10, 2, 32), Level(16 << 10, 4, 64),
                                Level(1 << 20, 8, 64))}
TOLERANCE = 0.02  # relative, on miss counts
SLACK = 16  # absolute: the region's edges (prologue, the piece around a marker)
# Cachegrind's events summed into ours.
CG_EVENTS = {"ir": ("Ir",), "dr": ("Dr", "Dw"), "i1": ("I1mr",), "d1": ("D1mr", "D1mw"),
             "ll": ("ILmr", "DLmr", "DLmw")}
SHOWN = ("ir", "dr", "i1", "d1", "ll")
CHECKED = ("i1", "d1", "ll")


def cachegrind_function(path: Path, function: str) -> dict[str, int]:
    """One function's own counts from a Cachegrind output file, summed over its lines."""
    events: list[str] = []
    sums: dict[str, int] = {}
    current = ""
    for line in path.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
            sums = dict.fromkeys(events, 0)
        elif line.startswith("fn="):
            current = line[3:]
        elif current == function and line[:1].isdigit():
            for name, value in zip(events, line.split()[1:], strict=False):
                sums[name] += int(value)
    if not events:
        raise SystemExit(f"{path}: no events line: not a Cachegrind output file")
    return {ours: sum(sums[e] for e in theirs) for ours, theirs in CG_EVENTS.items()}


def within(model: int, reference: int) -> bool:
    return abs(model - reference) <= max(TOLERANCE * reference, SLACK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--work", type=Path, default=Settings().cache_dir / "cache-model-check",
                        help="where the binaries and outputs go")
    args = parser.parse_args()
    for tool in ("gcc", "qemu-x86_64", "valgrind"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install gcc qemu-user valgrind")
    args.work.mkdir(parents=True, exist_ok=True)
    run = default_runner.run
    so = plugin.build(Settings())
    binary = args.work / "cache_patterns"
    run(["gcc", "-O2", "-static", "-Wall", "-Wextra", "-Werror", "-o", binary, SOURCE],
        timeout=120)
    version = run(["valgrind", "--version"]).stdout.strip()
    qemu = run(["qemu-x86_64", "--version"]).stdout.splitlines()[0]
    print(f"plugin {so}\n{qemu}; {version}; tolerance on misses: "
          f"max({TOLERANCE:.0%}, {SLACK})")
    failed = 0
    names = list(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        config = CONFIGS[name]
        print(f"\nconfig {name}: " + "  ".join(f"{lv} {':'.join(map(str, v))}"
                                              for lv, v in config.levels().items()))
        print(f"{'pattern':<7} {'event':<5} {'model':>10} {'cachegrind':>10} {'diff':>8}  ok")
        for pattern in PATTERNS:
            out = args.work / f"{name}-{pattern}"
            insns = read_insns(run_user(so, [binary, pattern], out.with_suffix(".insns.txt"),
                                        config))
            if insns.cache != config.levels():
                raise SystemExit(f"{out}: the plugin ran with {insns.cache}")
            ours = cache_totals(insns.programs[0].regions[0])
            cg_out = out.with_suffix(".cachegrind.out")
            run(["valgrind", "--tool=cachegrind", "--cache-sim=yes", *config.cachegrind_args(),
                 f"--cachegrind-out-file={cg_out}", binary, pattern], timeout=600)
            theirs = cachegrind_function(cg_out, f"measure_{pattern}")
            for event in SHOWN:
                model, ref = ours[event], theirs[event]
                diff = (model - ref) / ref if ref else float(model != 0)
                ok = within(model, ref) if event in CHECKED else None
                failed += ok is False
                mark = "" if ok is None else ("yes" if ok else "NO")
                print(f"{pattern:<7} {event:<5} {model:>10} {ref:>10} {diff:>+8.2%}  {mark}")
    print(f"\n{failed} miss count(s) outside the tolerance" if failed
          else "\nevery miss count within the tolerance")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
