"""bench/README.md's benchmarks table is generated from userspace/programs.toml and the suites
and must not drift from them; every C benchmark keeps its hand-written section."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from watchbench.cli.bench_doc import (
    BEGIN,
    END,
    README,
    REGENERATE,
    benchmarks_table,
    declared_benchmarks,
    regenerate,
    with_table,
)
from watchbench.errors import InputError
from watchbench.settings import PROJECT_ROOT
from watchbench.suite.definition import RunKind

PAGE = PROJECT_ROOT / README


def test_the_readme_table_is_the_generators_output():
    page = PAGE.read_text()
    assert page.count(BEGIN) == 1 and page.count(END) == 1
    assert with_table(page, benchmarks_table()) == page, (
        f"bench/README.md's benchmarks table is out of date with userspace/programs.toml and "
        f"bench/suites/: regenerate it with `{REGENERATE}` and commit it")


def test_every_c_benchmark_has_its_section_naming_the_primary_metric():
    """The prose a new benchmark needs: `### `wq-NAME` → `NAME`` with its **primary** metric."""
    page = PAGE.read_text()
    sections = {m.group(1): m.group(2) for m in re.finditer(
        r"^### `([^`]+)` → `[^`]+`.*?\n(.*?)(?=^##)", page, re.M | re.S)}
    for d in declared_benchmarks():
        if d.kind is RunKind.C:
            assert re.search(rf"^### `{d.program}` → `{d.benchmark}`", page, re.M), d.program
            assert "**primary**" in sections[d.program], d.program


def _project(tmp_path: Path) -> Path:
    """A copy of what the table is made from (the programs, the suites, the page)."""
    for part in ("userspace", "bench"):
        shutil.copytree(PROJECT_ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("python", "check", "scripts"))
    return tmp_path


def test_a_new_benchmark_changes_the_table(tmp_path):
    """The drift test can fail: a program and a suite run added make a row the page lacks."""
    root = _project(tmp_path)
    (root / "userspace" / "wq-new.c").write_text("int main(void) { return 0; }\n")
    with (root / "userspace" / "programs.toml").open("a") as f:
        f.write('\n[programs.wq-new]\nsources = ["wq-new.c", "wq.c"]\nkind = "benchmark"\n')
    with (root / "bench" / "suites" / "quick.toml").open("a") as f:
        f.write('\n[[run]]\nname = "new"\nkind = "c"\nprogram = "wq-new"\n'
                'benchmarks = ["new-post"]\nargs = []\n')
    table = benchmarks_table(root)
    assert ("| `new-post` | `wq-new` | `userspace/wq-new.c`, `userspace/wq.c` | `quick` |"
            in table.splitlines())
    page = (root / README).read_text()
    assert with_table(page, table) != page
    assert regenerate(root) is True
    assert with_table((root / README).read_text(), table) == (root / README).read_text()
    assert regenerate(root) is False


def test_a_run_naming_an_undeclared_program_is_refused(tmp_path):
    root = _project(tmp_path)
    with (root / "bench" / "suites" / "quick.toml").open("a") as f:
        f.write('\n[[run]]\nname = "ghost"\nkind = "c"\nprogram = "wq-ghost"\n'
                'benchmarks = ["ghost"]\n')
    with pytest.raises(InputError, match="wq-ghost"):
        benchmarks_table(root)


def test_a_page_without_the_markers_is_refused():
    with pytest.raises(InputError, match="markers"):
        with_table("# no table here\n", benchmarks_table())
