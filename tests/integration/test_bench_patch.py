"""The in-kernel benchmark patch series (patches/watch_queue-bench/) and its kconfig fragment.

Static checks always run; the dry-run apply and checkpatch run against the real Debian 6.12
tree of the test cache (marked ``kernel``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watchbench.kernel import patching
from watchbench.kernel.series import load_series

ROOT = REPO = Path(__file__).resolve().parents[2]
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


@pytest.mark.kernel
def test_series_applies_to_the_base_tree(debian_tree) -> None:
    """The pipeline's own dry run (scratch index) against the real Debian 6.12 base."""
    series = load_series(REPO / "patches", "watch_queue-bench")
    results = patching.check(debian_tree, series)
    assert [r.ok for r in results] == [True] * len(series.patches), [r.describe() for r in results]


@pytest.mark.kernel
def test_series_is_checkpatch_clean(debian_tree) -> None:
    """The tree's own scripts/checkpatch.pl --strict, through `patches.lint`."""
    series = load_series(REPO / "patches", "watch_queue-bench")
    for result in patching.lint(debian_tree, series, strict=True):
        assert (result.errors, result.warnings, result.checks) == (0, 0, 0), result.output
