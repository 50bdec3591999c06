"""The run directory, the one owner of its layout and of manifest.json.

A run directory holds ``manifest.json`` (provenance: written when the boot starts and
again when it ends, read by every loader), ``raw/`` (what the guest programs printed,
under the names below) and, once ingested, ``results.parquet`` (``results.store``).
Writers (``suite.run``) and readers (``results.store``) take every name from here.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from watchbench.errors import ResultsError
from watchbench.host.files import write_atomically
from watchbench.results.schema import (
    ACCELS,
    CI_ROLES,
    MANIFEST_COLUMNS,
    OPTIONAL_MANIFEST_COLUMNS,
)

MANIFEST_SCHEMA = 1
MANIFEST_FILE = "manifest.json"
RAW_DIR = "raw"
RESULTS_FILE = "results.parquet"


class RawFile(Enum):
    """The raw/ file names, by what wrote them (``RawFile.KTAP.of("conformance")``)."""

    RECORDS = "{}.jsonl"  # a C program's JSON Lines records (bench/RECORDS.md)
    LOG = "{}.log"  # all a C program printed
    KTAP = "{}.ktap"  # the conformance report
    PYTEST_JSON = "pytest-{}.json"  # pytest-benchmark's --benchmark-json
    PYTEST_LOG = "pytest-{}.log"
    STATUS = "{}-status.jsonl"  # status records of a Python run that was skipped

    def of(self, run: str) -> str:
        return self.value.format(run)


# What the ingest reads: the records and the pytest-benchmark files, by the names above.
RECORDS_GLOB = RawFile.RECORDS.of("*")
PYTEST_GLOB = RawFile.PYTEST_JSON.of("*")


def raw_dir(run_dir: Path) -> Path:
    return Path(run_dir) / RAW_DIR


def write_manifest(run_dir: Path, provenance: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (atomically) stamped with this code's manifest schema."""
    path = Path(run_dir) / MANIFEST_FILE
    return write_atomically(path, json.dumps({"schema_version": MANIFEST_SCHEMA, **provenance},
                                             indent=2) + "\n")
# Per-patch keys are optional (only per-patch CI runs have them); the other provenance
# columns must be there, plus what is kept in the manifest only.
PER_PATCH_KEYS = ("patch_index", "patch_subject")
MANIFEST_ONLY_KEYS = ("schema_version", "qemu_argv")
REQUIRED_KEYS: tuple[str, ...] = (
    *MANIFEST_ONLY_KEYS, *(c for c in MANIFEST_COLUMNS if c not in PER_PATCH_KEYS))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """Parse and check ``run_dir/manifest.json``; return the provenance columns it provides."""
    path = Path(run_dir) / MANIFEST_FILE
    hint = "the pipeline writes manifest.json when a run starts; re-run it or fix the file"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: no manifest, so the run has no provenance", hint=hint) from exc
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable manifest: {exc}", hint=hint) from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: manifest is not a JSON object", hint=hint)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ResultsError(f"{path}: manifest lacks {', '.join(missing)}", hint=hint)
    if data["schema_version"] != MANIFEST_SCHEMA:
        raise ResultsError(
            f"{path}: manifest schema {data['schema_version']!r}, expected {MANIFEST_SCHEMA}",
            hint="update watchbench or re-run the pipeline",
        )
    if data["accel"] not in ACCELS:
        raise ResultsError(
            f"{path}: accel {data['accel']!r} is not one of {', '.join(sorted(ACCELS))}",
            hint=hint,
        )
    if data["run_id"] != run_dir.name:
        raise ResultsError(
            f"{path}: run_id {data['run_id']!r} does not match its directory {run_dir.name!r}",
            hint="run directories must not be renamed; rename it back",
        )
    patch_index = data.get("patch_index")
    if patch_index is not None and not isinstance(patch_index, int):
        raise ResultsError(f"{path}: patch_index {patch_index!r} is not an integer", hint=hint)
    columns = {k: data[k] for k in REQUIRED_KEYS if k not in MANIFEST_ONLY_KEYS}
    columns["patch_index"] = patch_index
    columns["patch_subject"] = data.get("patch_subject") or ""
    columns.update(_optional(data, path, hint))
    return columns


def read_whole_manifest(run_dir: Path) -> dict[str, Any]:
    """The whole manifest, the keys kept in the manifest only included (QEMU version and
    argv, initramfs, suite hash...), after the checks of ``read_manifest``."""
    read_manifest(run_dir)
    return json.loads((Path(run_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))


def _optional(data: dict[str, Any], path: Path, hint: str) -> dict[str, Any]:
    """Known optional keys (kernel identity details, CI bookkeeping), checked when present.

    Other unknown keys (``console_log``, ``wall_seconds``...) stay in the manifest only.
    """
    out: dict[str, Any] = {}
    for key, kind in OPTIONAL_MANIFEST_COLUMNS.items():
        value = data.get(key)
        if value is None:
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ResultsError(f"{path}: {key} {value!r} is not an integer", hint=hint)
        if kind is str and not isinstance(value, str):
            raise ResultsError(f"{path}: {key} {value!r} is not a string", hint=hint)
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ResultsError(f"{path}: {key} {value!r} is not a list of strings",
                                   hint=hint)
            value = " ".join(value)
        out[key] = value
    role = out.get("ci_role")
    if role is not None and role not in CI_ROLES:
        raise ResultsError(f"{path}: ci_role {role!r} is not one of {', '.join(sorted(CI_ROLES))}",
                           hint=hint)
    return out
