"""The profile of a boot run under the instruction-count plugin: ``profile.parquet``.

A profiled boot is an ordinary icount boot (same figures: the plugin's counters are
host-side, the guest executes the same instructions) with the plugin loaded and KASLR
off, so that System.map's addresses are the run-time ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from watchbench.kernel.build import Kernel
from watchbench.kernel.symbols import IRQ_ENTRIES, SOFTIRQ_FUNCTIONS, SymbolMap
from watchbench.results import rundir
from watchbench.results.profile import (
    PROVENANCE,
    profile_table,
    read_insns,
    read_records,
    write_profile,
)
from watchbench.suite.definition import RunKind, SuiteRun
from watchbench.vm.plugin import OUTPUT
from watchbench.vm.session import BootResult

# What the plugin reads (symbols=, irq=, softirq=), kept beside each kernel's System.map.
PLUGIN_FILES = ("function-starts.txt", "irq-entries.txt", "softirq-functions.txt")
APPEND = ("nokaslr",)  # the kernel command line a profiled boot adds
# The suite entries whose programs link wq.c, so that each start says "P" to the plugin.
OURS = (RunKind.CONFORMANCE, RunKind.C)


def plugin_files(kernel: Kernel) -> tuple[Path, Path, Path]:
    """The kernel's function starts, interrupt entries and softirq functions for the
    plugin, kept beside System.map (written once per kernel)."""
    files = tuple(kernel.dir / name for name in PLUGIN_FILES)
    if not all(f.exists() for f in files):
        symbols = SymbolMap.load(kernel.dir / "System.map")
        symbols.write_starts(files[1], IRQ_ENTRIES)
        softirq = next((n for n in SOFTIRQ_FUNCTIONS if symbols.has(n)), SOFTIRQ_FUNCTIONS[0])
        symbols.write_starts(files[2], exact=(softirq,))
        symbols.write_starts(files[0])
    return files


def write(run_dir: Path, runs: list[SuiteRun], result: BootResult, kernel: Kernel) -> Path:
    """Pair the plugin's regions with the records, map them to symbols, write the table."""
    raw = rundir.raw_dir(run_dir)
    insns = read_insns(raw / OUTPUT)
    programs = [(run.name, read_records(raw / rundir.RawFile.RECORDS.of(run.name)))
                for run, outcome in zip(runs, result.commands, strict=True)
                if run.kind in OURS and outcome.returncode is not None]
    table = profile_table(insns, programs, SymbolMap.load(kernel.dir / "System.map"),
                          run_dir.name, raw / OUTPUT)
    meta = json.loads((run_dir / rundir.MANIFEST_FILE).read_text())
    return write_profile(run_dir, table.assign(**{k: str(meta.get(k, "")) for k in PROVENANCE}))
