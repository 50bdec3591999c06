"""The in-kernel benchmark patch series (patches/watch_queue-bench/) and its kconfig fragment.

Static checks always run; ``git apply --check`` and checkpatch run against a kernel tree
when one is present (the pipeline's cached tree, or /tmp/dl/linux-source-6.12, or
$WATCHBENCH_KERNEL_TREE) and skip with the reason otherwise.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from watchbench.runner import default_runner

ROOT = Path(__file__).resolve().parents[1]
SERIES_DIR = ROOT / "patches" / "watch_queue-bench"
FRAGMENT = ROOT / "kconfig" / "watch_queue-bench.config"


def series_names() -> list[str]:
    names = []
    for line in (SERIES_DIR / "series").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def patches() -> list[Path]:
    return [SERIES_DIR / n for n in series_names()]


def kernel_tree() -> Path | None:
    """A 6.12 source tree to check the series against, or None."""
    candidates = []
    if os.environ.get("WATCHBENCH_KERNEL_TREE"):
        candidates.append(Path(os.environ["WATCHBENCH_KERNEL_TREE"]))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "watchbench"
    candidates += sorted((cache / "trees").glob("*/src"))
    candidates.append(Path("/tmp/dl/linux-source-6.12"))
    for c in candidates:
        if (c / "kernel" / "watch_queue.c").is_file() and (c / ".git").exists():
            return c
    return None


def test_series_lists_existing_patches_in_order() -> None:
    names = series_names()
    assert names, "series file lists no patch"
    assert len(set(names)) == len(names), "a patch is listed twice"
    for p in patches():
        assert p.is_file(), f"series lists {p.name}, which does not exist"
    on_disk = {p.name for p in SERIES_DIR.glob("*.patch")}
    assert on_disk == set(names), f"patches not in series: {sorted(on_disk - set(names))}"
    numbers = [int(n.split("-", 1)[0]) for n in names]
    assert numbers == sorted(numbers), "series order differs from format-patch numbering"


@pytest.mark.parametrize("patch", patches(), ids=lambda p: p.name)
def test_patch_is_format_patch_with_signoff(patch: Path) -> None:
    text = patch.read_text()
    assert re.match(r"From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", text), "not git format-patch"
    head, sep, body = text.partition("\n---\n")
    assert sep, "no '---' separator between message and diffstat"
    mail_headers, _, message = head.partition("\n\n")
    mail_headers = re.sub(r"\n[ \t]+", " ", mail_headers)  # unfold RFC 2822 headers
    assert re.search(r"^From: .+ <[^@\s]+@[^>\s]+>$", mail_headers, re.M)
    assert re.search(r"^Date: ", mail_headers, re.M)
    subject = re.search(r"^Subject: \[PATCH[^\]]*\] (.+)$", mail_headers, re.M)
    assert subject and len(subject.group(1)) > 10
    assert len(message.split()) >= 30, "commit message is too short to explain the change"
    assert re.search(r"^Signed-off-by: .+ <[^@\s]+@[^>\s]+>$", head, re.M), "no Signed-off-by"
    assert "diff --git " in body


@pytest.mark.parametrize("patch", patches(), ids=lambda p: p.name)
def test_new_files_carry_gpl2_spdx(patch: Path) -> None:
    chunks = re.split(r"^diff --git ", patch.read_text(), flags=re.M)[1:]
    new = [c for c in chunks if re.search(r"^new file mode ", c, re.M)]
    for chunk in new:
        name = chunk.split()[1][2:]
        added = [ln[1:] for ln in chunk.splitlines() if ln.startswith("+") and
                 not ln.startswith("+++")]
        assert added, f"{name}: empty new file"
        assert re.match(r"(//|/\*|#) SPDX-License-Identifier: GPL-2\.0( |\*/|$)", added[0]), (
            f"{name}: first line is not a GPL-2.0 SPDX identifier: {added[0]!r}")


def test_series_adds_the_bench_option_and_object() -> None:
    text = "".join(p.read_text() for p in patches())
    assert "+config WATCH_QUEUE_BENCH\n" in text
    assert "+\tdepends on WATCH_QUEUE && DEBUG_FS\n" in text
    assert "+obj-$(CONFIG_WATCH_QUEUE_BENCH) += watch_queue_bench.o\n" in text
    # Default n: no "default y" on the new option.
    kconfig = text.split("+config WATCH_QUEUE_BENCH\n", 1)[1].split("\n+config ", 1)[0]
    assert "default y" not in kconfig
    # Built in only (bool), since it calls the unexported init_watch().
    assert "\tbool " in kconfig


def test_fragment_enables_the_bench() -> None:
    lines = [ln.strip() for ln in FRAGMENT.read_text().splitlines()]
    settings = [ln for ln in lines if ln and not ln.startswith("#")]
    for ln in settings:
        assert re.fullmatch(r"CONFIG_[A-Z0-9_]+=(y|m|n|\d+|\".*\")", ln), f"bad line {ln!r}"
    for need in ("CONFIG_WATCH_QUEUE_BENCH=y", "CONFIG_WATCH_QUEUE=y", "CONFIG_DEBUG_FS=y"):
        assert need in settings


@pytest.fixture(scope="module")
def tree() -> Path:
    t = kernel_tree()
    if t is None:
        pytest.skip("no kernel tree: set WATCHBENCH_KERNEL_TREE or fetch the pipeline's tree")
    return t


def test_series_applies_to_the_base_tree(tree: Path, tmp_path: Path) -> None:
    """git apply --check against the tree's base commit, whatever its work tree holds."""
    run = default_runner.run
    base = run(["git", "-C", tree, "rev-list", "--max-parents=0", "HEAD"]).stdout.split()[0]
    env = {"GIT_INDEX_FILE": str(tmp_path / "index")}
    run(["git", "-C", tree, "read-tree", base], env=env)
    for p in patches():
        res = run(["git", "-C", tree, "apply", "--check", "--cached", p], env=env, check=False)
        assert res.returncode == 0, f"{p.name} does not apply to {base}: {res.stderr}"
        run(["git", "-C", tree, "apply", "--cached", p], env=env)


def test_series_is_checkpatch_clean(tree: Path) -> None:
    script = tree / "scripts" / "checkpatch.pl"
    if not script.is_file():
        pytest.skip(f"{script} missing")
    env = {"PATH": "/usr/bin:/bin:" + os.environ.get("PATH", "")}
    for p in patches():
        res = default_runner.run(["perl", script, "--strict", p], cwd=tree, env=env,
                                 check=False, timeout=300)
        out = res.stdout + res.stderr
        assert "total: 0 errors, 0 warnings, 0 checks" in out, f"{p.name}:\n{out}"
