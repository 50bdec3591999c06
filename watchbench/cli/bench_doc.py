"""The benchmarks table of bench/README.md, made from where each benchmark is declared.

A benchmark is declared once: its program in ``userspace/programs.toml`` and the suite runs
(``bench/suites/*.toml``) that name the program and the records it writes. The table is
generated from them so that adding a benchmark edits no list by hand; the table sits between
two markers in the hand-written page. Regenerate with ``REGENERATE`` (it rewrites the part
between the markers in place); ``tests/unit/test_bench_doc.py`` fails when it drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import InputError
from watchbench.guest.initramfs import discover_programs
from watchbench.host.files import write_atomically
from watchbench.settings import PROJECT_ROOT
from watchbench.suite.definition import RunKind, load_suite, suite_names

REGENERATE = ".venv/bin/python -m watchbench.cli.bench_doc"
README = Path("bench") / "README.md"
BEGIN = ("<!-- Generated from userspace/programs.toml and bench/suites/*.toml by\n"
         f"watchbench/cli/bench_doc.py; do not edit. Regenerate: {REGENERATE} -->")
END = "<!-- End of the generated table. -->"


@dataclass(frozen=True)
class Declared:
    """One benchmark as the declarations give it: the records' ``benchmark`` name, the
    program (or pytest) that writes them, the files it is made of, the suites that run it."""

    benchmark: str
    kind: RunKind
    program: str
    sources: tuple[str, ...]
    suites: tuple[str, ...]


def declared_benchmarks(project_root: Path = PROJECT_ROOT) -> list[Declared]:
    """Every benchmark some suite runs, by name; an entry naming a program that
    ``userspace/programs.toml`` lacks is an error (the table would name no sources)."""
    userspace = project_root / "userspace"
    programs = {p.name: tuple(s.relative_to(project_root).as_posix() for s in p.sources)
                for p in discover_programs(userspace)}
    found: dict[tuple[str, str], tuple[RunKind, tuple[str, ...], list[str]]] = {}
    for name in suite_names(project_root):
        suite = load_suite(project_root, name)
        for run in suite.benchmarks:
            if run.kind is RunKind.PYTHON:
                sources: tuple[str, ...] = (run.path.rstrip("/") + "/",)
            elif run.program in programs:
                sources = programs[run.program]
            else:
                raise InputError(f"bench/suites/{name}.toml: run {run.name!r} names program "
                                 f"{run.program!r}, which userspace/programs.toml does not "
                                 "declare")
            for benchmark in run.benchmarks:
                entry = found.setdefault((benchmark, run.program), (run.kind, sources, []))
                if suite.name not in entry[2]:
                    entry[2].append(suite.name)
    return [Declared(benchmark, kind, program, sources, tuple(sorted(suites)))
            for (benchmark, program), (kind, sources, suites) in sorted(found.items())]


def benchmarks_table(project_root: Path = PROJECT_ROOT) -> str:
    """The table with its markers, as it stands in bench/README.md."""
    rows = ["| benchmark | program | sources | suites |", "| --- | --- | --- | --- |"]
    for d in declared_benchmarks(project_root):
        rows.append(f"| `{d.benchmark}` | `{d.program}` | "
                    f"{', '.join(f'`{s}`' for s in d.sources)} | "
                    f"{', '.join(f'`{s}`' for s in d.suites)} |")
    return "\n".join([BEGIN, *rows, END])


def with_table(page: str, table: str) -> str:
    """``page`` with the part between the markers (both included) replaced by ``table``."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise InputError(f"{README}: the markers of the generated benchmarks table are missing",
                         hint=f"put the first lines of `{REGENERATE}`'s table back by hand")
    return page[:start] + table + page[end + len(END):]


def regenerate(project_root: Path = PROJECT_ROOT) -> bool:
    """Rewrite the table in bench/README.md; True when it changed."""
    path = project_root / README
    page = path.read_text()
    new = with_table(page, benchmarks_table(project_root))
    if new != page:
        write_atomically(path, new)
    return new != page


if __name__ == "__main__":
    print(f"{README}: {'rewritten' if regenerate() else 'up to date'}")
