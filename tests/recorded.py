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
