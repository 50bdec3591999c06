"""deps and test: the host tools the pipeline needs, and the project's own test suite."""

from __future__ import annotations

from typing import Any

from watchbench.cli import command
from watchbench.errors import DepsError
from watchbench.host.deps import PIPELINE, TESTS, ensure, missing


def check_or_install(install: bool, tests: bool) -> str:
    needs = PIPELINE + (TESTS if tests else ())
    if install:
        installed = ensure(needs)
        return f"host tools: installed {', '.join(installed)}" if installed else "host tools: all present"
    absent = missing(needs)
    if absent:
        raise DepsError(f"missing host packages: {', '.join(absent)}",
                        hint=f"apt-get install -y {' '.join(absent)}")
    return "host tools: all present"


@command
def deps(c: Any, check: bool, tests: bool) -> None:
    print(check_or_install(install=not check, tests=tests))


@command
def test(c: Any, k: str | None, fast: bool, args: str) -> int:
    import pytest  # only this task needs it

    if not fast:
        print(check_or_install(install=True, tests=True))
    argv = (["-k", k] if k else []) + (["-m", "not kernel"] if fast else []) + args.split()
    return int(pytest.main(argv))
