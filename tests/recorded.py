"""The recorded runs under tests/data/results, copied and ingested for a test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from watchbench.results import ingest_run, load_runs

DATA = Path(__file__).resolve().parent / "data" / "results"
SAMPLES = DATA / "runs"  # hand-made sample runs (make_samples.py)
QUICK = DATA / "quick-icount"  # two real icount boots of the quick suite


def ingested(source: Path, runs: Path) -> pd.DataFrame:
    """``source``'s run directories copied to ``runs``, each ingested from its raw
    records (as a boot leaves them), and loaded."""
    shutil.copytree(source, runs)
    assert any(runs.iterdir()), f"no recorded runs under {source}"
    for run in sorted(runs.iterdir()):
        ingest_run(run)
    return load_runs(runs)


PROFILES = DATA / "profile-ci"  # two real profiled icount boots of the ci suite


def record_profiles(run_dirs: list[Path], system_map: Path, dest: Path = PROFILES) -> None:
    """Keep profiled boots for replay: each run's manifest, records and plugin file
    (gzipped), and the part of ``System.map`` their addresses need (every address keeps
    the symbol it falls in and the next one, so it maps as with the whole map)."""
    import gzip

    import numpy as np

    from watchbench.kernel.symbols import SymbolMap
    from watchbench.results.profile import read_insns

    symbols = SymbolMap.load(system_map)
    keep: set[int] = set()
    for run in run_dirs:
        out = dest / run.name / "raw"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "manifest.json", out.parent / "manifest.json")
        for records in (run / "raw").glob("*.jsonl"):
            shutil.copy(records, out / records.name)
        (out / "insns.txt.gz").write_bytes(gzip.compress((run / "raw" / "insns.txt").read_bytes(),
                                                         mtime=0))
        for program in read_insns(run / "raw" / "insns.txt").programs:
            for region in program.regions:
                index = np.searchsorted(symbols.starts, region.vaddr, side="right") - 1
                keep.update(int(i) for i in np.unique(np.concatenate([index, index + 1]))
                            if 0 <= i < len(symbols.starts))
    lines = [f"{int(symbols.starts[i]):016x} T {symbols.names[i]}" for i in sorted(keep)]
    lines.append(f"{symbols.text_end:016x} T _etext")
    (dest / "System.map").write_text("\n".join(lines) + "\n")
