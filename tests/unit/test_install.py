"""An installed watchbench (issue 30): the wheel holds every file the pipeline reads, and
``wb`` installed from it runs from any directory on those files, not the checkout's.

The wheel is built once per module from a copy of the tracked files (what a clone holds;
the checkout gets no build/ directory), with ``pip wheel`` as a user would. Measured on 2
cores: the build about 5 s, the install and five ``wb`` commands about 6 s."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from tests.wheel import site_packages, tracked
from watchbench.host.runner import default_runner
from watchbench.settings import Settings

# What the pipeline reads from the project, by the checkout's paths (settings.data_root).
DATA_DIRS = ("kconfig", "bench/suites", "userspace")


def needed_files() -> dict[str, str]:
    """Checkout path -> its path in the wheel, for every file the pipeline reads."""
    bench = Settings().bench_series
    wanted: dict[str, str] = {}
    for rel in tracked():
        top = rel.split("/")[0]
        if rel.startswith("watchbench/") and ("/__pycache__/" not in rel):
            wanted[rel] = rel
        elif rel.startswith(f"patches/{bench}/") or any(
                rel.startswith(d + "/") for d in DATA_DIRS):
            wanted[rel] = f"watchbench/_data/{rel}"
        elif top == "patches":
            continue  # a user's own series in the checkout is not shipped
    return wanted


def test_the_wheel_holds_every_file_the_pipeline_reads_and_the_wb_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = needed_files()
    assert "watchbench/vm/wb-insns.c" in wanted and "watchbench/cli/tasks.py" in wanted
    assert f"patches/{Settings().bench_series}/series" in wanted
    assert {"kconfig/base.config", "bench/suites/quick.toml", "userspace/programs.toml",
            "userspace/check/lib.sh", "userspace/python/wqpy.py"} <= set(wanted)
    missing = sorted(rel for rel, inside in wanted.items() if inside not in names)
    assert missing == [], f"not in the wheel: {missing}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "wb = watchbench.cli.program:main" in scripts
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def _wb(venv: Path, where: Path, *argv: str, check: bool = True):
    """The installed ``wb ARGV`` run in ``where``, on a cache and runs dir there (the
    caller's INVOKE_ variables are gone: ``elsewhere``)."""
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(where / "cache"),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(where / "runs"),
           "PYTHONPATH": "", "VIRTUAL_ENV": str(venv),
           "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    return default_runner.run([str(venv / "bin" / "wb"), *argv], cwd=where, env=env,
                              timeout=120, check=check)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A directory that is not the checkout, with no INVOKE_ variable of the caller."""
    for name in [k for k in os.environ if k.startswith("INVOKE_")]:
        monkeypatch.delenv(name)
    work = tmp_path / "somewhere"
    work.mkdir()
    return work


def test_the_installed_wb_runs_from_any_directory_on_its_own_files(installed, elsewhere):
    python = installed / "bin" / "python"
    where = default_runner.run([str(python), "-c", "import watchbench.settings as s; "
                                "print(s.__file__); print(s.data_root())"],
                               cwd=elsewhere).stdout.split()
    package = site_packages(installed) / "watchbench"
    assert where == [str(package / "settings.py"), str(package / "_data")]

    listing = _wb(installed, elsewhere, "--list").stdout
    assert "runs" in listing and "gc" in listing and "ci" in listing
    shown = " ".join(_wb(installed, elsewhere, "settings").stdout.split())
    assert f"watchbench.cache_dir = {elsewhere / 'cache'}" in shown
    assert "watchbench.decision.alpha = 0.01 (default)" in shown
    series = _wb(installed, elsewhere, "patches.list").stdout
    assert series.startswith(Settings().bench_series)  # the shipped series, found from here
    assert "no runs stored" in _wb(installed, elsewhere, "runs").stdout

    typo = _wb(installed, elsewhere, "ci", "--thresold", "0.1", check=False)
    assert typo.returncode == 2
    assert "its options: wb --help ci" in typo.stderr and "./wb" not in typo.stderr
    assert not (elsewhere / "patches").exists() and not (elsewhere / "reports").exists()
