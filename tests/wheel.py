"""watchbench as a user installs it: a wheel built from the tracked files, installed into
a fresh venv (tests/unit/test_install.py; the developer's flow from inside a kernel
clone: tests/integration/test_your_branch.py). Measured on 2 cores: the wheel about
5 s, the venv and the install about 3 s."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from watchbench.host.runner import default_runner
from watchbench.settings import PROJECT_ROOT


def tracked() -> list[str]:
    listed = default_runner.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT).stdout
    return [p for p in listed.split("\0") if p and (PROJECT_ROOT / p).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel . --no-deps`` on a copy of the tracked files (build isolation: pip takes
    setuptools from its index, as any user's pip does)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    for rel in tracked():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / rel, source / rel)
    out = root / "dist"
    default_runner.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w",
                        str(out)], cwd=source, timeout=300)
    (found,) = out.glob("watchbench-*.whl")
    return found


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python*/site-packages")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (``pip install --no-deps --no-index``). Its
    dependencies (pandas, scipy...) come from this test's own environment through a .pth
    line, as --system-site-packages would give them: installing them again would take
    minutes and test pip, not us. A .pth line adds a directory, not the .pth files in it,
    so the checkout's editable install stays out of the fresh venv."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    default_runner.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    default_runner.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                        "install", "-q", "--no-deps", "--no-index", str(wheel)], timeout=300)
    (site_packages(venv) / "watchbench-test-deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    return venv
