"""Ctrl-C and SIGKILL of a real `inv` in the middle of fetch, apply and report, then the
same command again: it succeeds, no lock is left held, nothing half-written is taken as
good and no tree is left mid-`git am`. (Configure, build and boot: the integration tests
in tests/integration/test_interrupt.py, on the real kernel tree.)

The trees here are made by `inv kernel.fetch --tarball` from a small tarball with the shape
of a kernel tree, in a cache of the test's own; the points are real (git held inside its
own hook, or a line the command printed)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.interrupting import (
    INV,
    git_hold,
    interrupt,
    killed_as,
    mini_series,
    mini_tarball,
    run,
)
from watchbench.host.files import write_atomically
from watchbench.results import ingest_run

SIGNALS = [pytest.param(signal.SIGINT, id="sigint"), pytest.param(signal.SIGKILL, id="sigkill")]
DATA = Path(__file__).resolve().parents[1] / "data" / "results"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"INVOKE_WATCHBENCH_CACHE_DIR": str(tmp_path / "cache"),
            "INVOKE_WATCHBENCH_RUNS_DIR": str(tmp_path / "runs")}


def _trees(tmp_path: Path) -> list[Path]:
    """Trees that are ready (their state file written)."""
    root = tmp_path / "cache" / "trees"
    return sorted(p for p in root.iterdir() if (p / "tree.json").exists()) if root.is_dir() else []


@pytest.mark.parametrize("sig", SIGNALS)
def test_fetch_interrupted_while_committing_the_baseline(tmp_path, sig):
    tarball = mini_tarball(tmp_path / "linux-mini.tar.gz", extra_files=200)
    env = _env(tmp_path)
    hold = git_hold(tmp_path, "prepare-commit-msg", hold_first=True)
    outcome = interrupt([*INV, "kernel.fetch", "--tarball", str(tarball)], {**env, **hold.env},
                        lambda _: hold.held, sig, after=hold.release)
    assert killed_as(outcome, sig), outcome.tail()
    assert _trees(tmp_path) == []  # a half-made tree is never taken as a tree
    assert not (tmp_path / "cache" / "active-tree").exists()

    again = run([*INV, "kernel.fetch", "--tarball", str(tarball)], env)
    assert again.returncode == 0, again.tail()
    (tree,) = _trees(tmp_path)
    files = subprocess.run(["git", "-C", str(tree / "src"), "ls-files"], capture_output=True,
                           text=True, check=True).stdout.split()
    assert len(files) == 203 and "drivers/d199.c" in files
    assert not list(tree.parent.glob("*.partial"))


@pytest.fixture
def mini_tree(tmp_path) -> tuple[dict[str, str], Path, Path]:
    """The environment of a cache whose active tree is a mini tree; the tree; a series."""
    env = _env(tmp_path)
    done = run([*INV, "kernel.fetch", "--tarball", str(mini_tarball(tmp_path / "linux-mini.tgz"))],
               env)
    assert done.returncode == 0, done.tail()
    (tree,) = _trees(tmp_path)
    return env, tree, mini_series(tree / "src", tmp_path / "three")


@pytest.mark.parametrize("sig", SIGNALS)
def test_apply_interrupted_mid_git_am(tmp_path, mini_tree, sig):
    env, tree, series = mini_tree
    before = (tree / "tree.json").read_text()
    hold = git_hold(tmp_path, "applypatch-msg")  # patch 1 goes in, git am stops in patch 2
    outcome = interrupt([*INV, "patches.apply", "--series", str(series)], {**env, **hold.env},
                        lambda _: hold.held, sig, after=hold.release)
    assert killed_as(outcome, sig), outcome.tail()
    rebase_apply = tree / "src" / ".git" / "rebase-apply"
    if sig == signal.SIGINT:  # put back before it exited
        assert not rebase_apply.exists() and not (tree / "journal.json").exists()
        assert (tree / "tree.json").read_text() == before
    else:  # left mid git am, with the journal that says how to undo it
        assert rebase_apply.is_dir() and (tree / "journal.json").exists()

    status = run([*INV, "kernel.status"], env)  # takes no lock: shows the tree as it is
    assert status.returncode == 0, status.tail()
    pending = [ln for ln in status.lines if ln.startswith("pending: apply of series three")]
    assert bool(pending) == (sig == signal.SIGKILL), status.tail()
    again = run([*INV, "patches.apply", "--series", str(series)], env)
    assert again.returncode == 0, again.tail()
    if sig == signal.SIGKILL:
        assert any("put back as it was before the interrupted apply of series three" in line
                   for line in again.lines), again.tail()
    state = json.loads((tree / "tree.json").read_text())
    assert state["series"] == "three" and len(state["series_patches"]) == 3
    assert not rebase_apply.exists() and not (tree / "journal.json").exists()
    head = subprocess.run(["git", "-C", str(tree / "src"), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert head == state["applied_head"]


@pytest.mark.parametrize("sig", SIGNALS)
def test_report_interrupted_while_writing(tmp_path, sig):
    runs = tmp_path / "runs"
    shutil.copytree(DATA / "runs", runs)
    for run_dir in sorted(runs.iterdir()):
        ingest_run(run_dir)
    env, out = _env(tmp_path), tmp_path / "reports"
    argv = [*INV, "report", "--baseline", "sample-baseline", "--candidate", "sample-candidate",
            "--out", str(out)]
    out.mkdir()  # the page a previous report left (the real writer runs twice below)
    (out / "index.html").write_text("<html><body>an older report</body></html>\n")
    old = (out / "index.html").read_bytes()

    outcome = interrupt(argv, env, lambda lines: any("rows: writing" in ln for ln in lines), sig)
    assert outcome.returncode in (0, 130, -signal.SIGKILL), outcome.tail()
    page = (out / "index.html").read_bytes()
    assert page == old or page.rstrip().endswith(b"</html>")  # the old page or a whole new one

    again = run(argv, env)
    assert again.returncode == 0, again.tail()
    assert (out / "index.html").read_bytes().rstrip().endswith(b"</html>")


WRITER = """
import sys
from pathlib import Path
from watchbench.host.files import write_atomically
write_atomically(Path(sys.argv[1]), b"new " * (64 << 20))
"""


def test_a_file_written_atomically_is_old_or_new_when_the_writer_is_killed(tmp_path):
    """SIGKILL while 256 MB are written: the file keeps its old content (or has all the new)."""
    target = write_atomically(tmp_path / "state.json", "old")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in tmp_path.glob(".state.json.tmp-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    content = target.read_bytes()
    assert content == b"old" or content == b"new " * (64 << 20)
