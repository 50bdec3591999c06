"""Benchmark suite definitions (bench/suites/<name>.toml) turned into guest commands."""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from watchbench.errors import InputError
from watchbench.guest.initramfs import GuestCommand
from watchbench.results.rundir import RawFile


class RunKind(StrEnum):
    """What a suite entry runs: the API conformance suite (KTAP, required), a C benchmark
    (JSON Lines records) or Python benchmarks (pytest-benchmark, on the host-root side)."""

    CONFORMANCE = "conformance"
    C = "c"
    PYTHON = "python"


KINDS = tuple(RunKind)
GUEST_RESULTS = "/results"  # where init mounts the run's raw/ directory (busybox side)
HOST_RESULTS = "/run/wb-results"  # the same share as seen after the chroot (host side)


@dataclass(frozen=True)
class SuiteRun:
    name: str
    kind: RunKind
    program: str
    args: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()
    path: str = ""

    def command(self) -> GuestCommand:
        if self.kind is RunKind.PYTHON:
            return GuestCommand(("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "-o", "addopts=", "-rs", self.path,
                                 f"--benchmark-json={HOST_RESULTS}/{RawFile.PYTEST_JSON.of(self.name)}",
                                 "--benchmark-save-data",
                                 *self.args), "host")
        return GuestCommand((self.program, *self.args))


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    budget_s: float
    runs: tuple[SuiteRun, ...] = field(default=())

    @property
    def conformance(self) -> list[SuiteRun]:
        return [r for r in self.runs if r.kind is RunKind.CONFORMANCE]

    @property
    def benchmarks(self) -> list[SuiteRun]:
        return [r for r in self.runs if r.kind is not RunKind.CONFORMANCE]


def suite_digest(project_root: Path, suite: Suite) -> str:
    """What a suite runs, hashed: its definition and the Python benchmark files it names
    (the C programs are in the initramfs, which has its own content hash)."""
    digest = hashlib.sha256(repr(suite).encode())
    for run in suite.runs:
        if run.kind is RunKind.PYTHON:
            where = project_root / run.path
            files = sorted(where.rglob("*.py")) if where.is_dir() else [where]
            for path in (f for f in files if f.is_file()):
                digest.update(os.path.relpath(path, project_root).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def suites_dir(project_root: Path) -> Path:
    return project_root / "bench" / "suites"


def suite_names(project_root: Path) -> list[str]:
    """Every suite file's name, sorted: what a typo's hint lists and what the benchmarks
    table of bench/README.md is made from."""
    return [p.stem for p in sorted(suites_dir(project_root).glob("*.toml"))]


def load_suite(project_root: Path, name: str) -> Suite:
    """Read and validate a suite file; errors name the file and the entry."""
    path = Path(name) if name.endswith(".toml") else suites_dir(project_root) / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(suite_names(project_root))
        raise InputError(f"no benchmark suite {name!r} ({path})", hint=f"known suites: {known}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    head = data.get("suite", {})
    runs = []
    for number, entry in enumerate(data.get("run", []), 1):
        where = f"{path} [[run]] #{number}"
        kind = entry.get("kind")
        if kind not in KINDS:
            raise InputError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if not entry.get("program") or not entry.get("name"):
            raise InputError(f"{where}: needs a name and a program")
        if kind == "python" and not entry.get("path"):
            raise InputError(f"{where}: a python run needs the path of its tests")
        args = entry.get("args", [])
        if not all(isinstance(a, str) for a in args):
            raise InputError(f"{where}: args must be a list of strings")
        runs.append(SuiteRun(entry["name"], RunKind(kind), entry["program"], tuple(args),
                             tuple(entry.get("benchmarks", [])), entry.get("path", "")))
    if not runs:
        raise InputError(f"{path}: the suite has no [[run]] entries")
    return Suite(head.get("name", path.stem), head.get("description", ""),
                 float(head.get("budget_s", 600)), tuple(runs))
