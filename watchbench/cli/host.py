"""deps and test: the host tools the pipeline needs, and the project's own test suite."""

from __future__ import annotations

from typing import Any

from watchbench.cli import command
from watchbench.errors import DepsError
from watchbench.host import deps as host_deps


def ensure(install: bool, tests: bool) -> str:
    needs = host_deps.PIPELINE + (host_deps.TESTS if tests else ())
    if install:
        installed = host_deps.ensure(needs)
        return f"host tools: installed {', '.join(installed)}" if installed else "host tools: all present"
    missing = host_deps.missing(needs)
    if missing:
        raise DepsError(f"missing host packages: {', '.join(missing)}",
                           hint=f"apt-get install -y {' '.join(missing)}")
    return "host tools: all present"


@command
def deps(c: Any, check: bool, tests: bool) -> None:
    print(ensure(install=not check, tests=tests))


@command
def test(c: Any, k: str | None, fast: bool, args: str) -> int:
    import pytest  # only this task needs it

    if not fast:
        print(ensure(install=True, tests=True))
    argv = (["-k", k] if k else []) + (["-m", "not kernel"] if fast else []) + args.split()
    return int(pytest.main(argv))
