"""Progress lines in a log: places named once in full, paths short after, 80 columns,
and the lines of a progress without a width exactly as given (tests/integration parse
them)."""

from __future__ import annotations

import io
from pathlib import Path

from watchbench.host.progress import Progress, short_path

DEEP = Path("/tmp/pytest-of-ci/pytest-7/a-long-directory-name-of-a-runner/workspace/job")
KEY = "c73393eb76e4fe15"
RUN = "20261207T014028-c73393eb-1a2b3c4d"


def _log(width: int | None = 80) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress("ci", stream=stream, width=width), stream


def test_a_path_is_short_relative_to_the_cwd_or_else_its_last_two_parts():
    assert short_path(DEEP / "runs" / RUN / "results.parquet") == f"…/{RUN}/results.parquet"
    assert short_path(DEEP / "cache" / "kernels" / KEY) == f"…/kernels/{KEY}"
    assert short_path("/srv/work/reports/index.html", cwd=Path("/srv/work")) == (
        "reports/index.html")
    assert short_path("/tmp/x/y") == "/tmp/x/y"  # short already
    assert short_path("reports/summary.md") == "reports/summary.md"


def test_the_lines_of_a_build_and_a_boot_fit_80_columns_once_the_places_are_named():
    progress, stream = _log()
    progress.place("boots, a run directory each", DEEP / "runs")
    progress.place("kernels, trees, build logs", DEEP / "cache")
    artifact = DEEP / "cache" / "kernels" / KEY
    log = DEEP / "cache" / "logs" / f"build-{KEY}-20261207-014028.log"
    # as kernel.build and suite.run say them
    progress.step(f"building debian 6.12.117 + watch_queue-bench config 0123456789abcdef "
                  f"with -j2 (log {log})")
    progress.step(f"built 6.12.117-wb-{KEY} in 412 s -> {artifact}/bzImage")
    progress.step(f"kernel {KEY} already built ({artifact}).")
    progress.step(f"suite ci (4 runs) on 6.12.117-wb-{KEY} [icount] -> {DEEP / 'runs' / RUN}")
    progress.update("kernel-post: 12 records")
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"[ci] boots, a run directory each: {DEEP / 'runs'}"  # in full, once
    assert all(len(line) <= 80 for line in lines[2:]), lines
    text = " ".join(" ".join(lines[2:]).split())  # the wrapped lines joined again
    assert str(DEEP) not in text
    assert f"(log …/logs/build-{KEY}-20261207-014028.log)" in text
    assert f"-> …/{KEY}/bzImage" in text
    assert f"(…/kernels/{KEY})." in text  # the full stop stays outside the path
    assert f"…/runs/{RUN}" in text and lines[-1] == "[ci] kernel-post: 12 records"


def test_a_long_line_wraps_indented_and_nothing_that_is_not_a_path_is_touched():
    progress, stream = _log()
    progress.step("profile failed: " + "the plugin said no " * 5 + "(round 1/4, and/or 2/3)")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("       the plugin") and lines[1].endswith("and/or 2/3)")


def test_without_a_width_a_line_is_printed_as_given():
    """`./wb bench` and `./wb build`: tests/integration/test_interrupt.py reads the run
    directory and the build log from these lines."""
    progress, stream = _log(width=None)
    message = f"suite ci (4 runs) on 6.12.117 [icount] -> {DEEP / 'runs' / RUN}"
    progress.step(message)
    assert stream.getvalue() == f"[ci] {message}\n"


def test_a_place_under_the_current_directory_is_named_relative_to_it(tmp_path, monkeypatch):
    """In CI the reports and runs may sit in the checkout: their paths stay paths one
    can paste, relative to where the job runs."""
    monkeypatch.chdir(tmp_path)
    progress, stream = _log()
    progress.place("boots, a run directory each", tmp_path / "runs")
    progress.step(f"results table: {tmp_path / 'runs' / RUN / 'results.parquet'}")
    assert stream.getvalue().splitlines() == [
        "[ci] boots, a run directory each: runs",
        f"[ci] results table: runs/{RUN}/results.parquet"]


def test_what_a_line_names_stays_on_its_first_line():
    """`tree ID: SRC at BASE`: the id and its path stay together on the first line
    (tests/integration/test_ci_integration.py looks for "tree ID: " in a shard's log),
    for an id as long as a Debian one or a user tree's of a repository named up to 17
    characters (kernel.trees: user-NAME-HASH, 31 here; its path: …/ID/src)."""
    progress, stream = _log()
    tree = "user-linux-next-stable-0123abcd"
    src = DEEP / "cache" / "trees" / tree / "src"
    progress.step(f"tree {tree}: {src} at watchbench-base-v6.12 (0123456789ab)")
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"[ci] tree {tree}: …/{tree}/src"
    assert all(len(line) <= 80 for line in lines)
