"""The stored runs as a list (``wb runs``, ``wb gc``, ``export``'s default): each run's
manifest read as plain JSON, never its results table, so that listing hundreds of runs
costs milliseconds and no pandas import."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from watchbench.results.rundir import MANIFEST_FILE, RESULTS_FILE


@dataclass(frozen=True)
class StoredRun:
    """One run directory as its manifest describes it (``problem``: why it could not be
    read; the other fields are then empty)."""

    run_id: str
    path: Path
    timestamp: str = ""  # ISO 8601, UTC (the manifest's)
    kernel_version: str = ""
    base_label: str = ""
    series_name: str = ""
    kernel_key: str = ""
    accel: str = ""
    suite: str = ""
    label: str = ""
    ingested: bool = False  # results.parquet is there (a run still booting has none yet)
    problem: str = ""
    kernel_args: str = ""  # the user's extra boot parameters (--kernel-args)
    kconfig_add: str = ""  # the user's extra kconfig options (--kconfig-add)

    @property
    def kernel(self) -> str:
        """``6.12.117+ + my-fix`` (the release and the series on it)."""
        return " + ".join(p for p in (self.kernel_version, self.series_name) if p)


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _words(data: dict, key: str) -> str:
    """A list of words (or one string) in the manifest, as one line."""
    value = data.get(key)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def read_stored(run_dir: Path) -> StoredRun:
    """A run directory's listing entry; an unreadable manifest is said, not raised, so one
    bad run never hides the others."""
    ingested = (run_dir / RESULTS_FILE).is_file()
    try:
        data = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return StoredRun(run_dir.name, run_dir, ingested=ingested, problem="no manifest.json")
    except (OSError, ValueError) as exc:
        return StoredRun(run_dir.name, run_dir, ingested=ingested,
                         problem=f"unreadable manifest.json: {exc}")
    if not isinstance(data, dict):
        return StoredRun(run_dir.name, run_dir, ingested=ingested,
                         problem="manifest.json is not a JSON object")
    return StoredRun(run_dir.name, run_dir, timestamp=_text(data, "timestamp"),
                     kernel_version=_text(data, "kernel_version"),
                     base_label=_text(data, "base_label"),
                     series_name=_text(data, "series_name"),
                     kernel_key=_text(data, "kernel_key"), accel=_text(data, "accel"),
                     suite=_text(data, "suite"), label=_text(data, "label"),
                     ingested=ingested, kernel_args=_words(data, "kernel_args"),
                     kconfig_add=_words(data, "kconfig_add"))


def stored_runs(runs_dir: Path) -> list[StoredRun]:
    """Every run directory under ``runs_dir``, newest first (by the manifest's timestamp,
    a run without one by its directory's time); a missing directory holds none."""
    try:
        dirs = [p for p in Path(runs_dir).iterdir() if p.is_dir() and not p.is_symlink()
                and not p.name.startswith(".")]
    except FileNotFoundError:
        return []
    runs = [read_stored(p) for p in dirs]

    def newest(run: StoredRun) -> tuple[str, str]:
        if run.timestamp:
            return run.timestamp, run.run_id
        try:
            mtime = run.path.stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)), run.run_id

    return sorted(runs, key=newest, reverse=True)
