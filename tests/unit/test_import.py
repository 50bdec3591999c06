"""patches.import from a git range, an mbox and a directory, with real git."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from watchbench.errors import InputError
from watchbench.host.git import Git
from watchbench.kernel.patching import import_directory, import_mbox, import_range
from watchbench.kernel.series import load_series

TWO = Path(__file__).resolve().parents[1] / "data" / "patches" / "two-patch"


@pytest.fixture
def repo(tmp_path):
    """A small git history: base, two changes on a side branch, merged."""
    path = tmp_path / "linux"
    path.mkdir()
    git = Git(path)
    git("init", "-q", "-b", "master")
    (path / "Kconfig").write_text("mainmenu\n")
    (path / "watch_queue.c").write_text("".join(f"line {i}\n" for i in range(30)))
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "notifications")
    for n in (1, 2):
        text = (path / "watch_queue.c").read_text().replace(f"line {n * 10}\n", f"line {n * 10} changed\n")
        (path / "watch_queue.c").write_text(text)
        git("commit", "-q", "-am", f"watch_queue: change {n}")
    git("checkout", "-q", "master")
    git("merge", "-q", "--no-ff", "-m", "Merge tag 'notifications-20200601'", "notifications")
    return path


def test_import_range_of_a_merge(repo, tmp_path):
    out = tmp_path / "patches" / "notifications"
    names = import_range(repo, "HEAD^1..HEAD^2", out)
    assert len(names) == 2 and (out / "series").read_text().splitlines() == names
    series = load_series(out.parent, "notifications")
    assert [p.subject for p in series.patches] == ["[PATCH 1/2] watch_queue: change 1",
                                                   "[PATCH 2/2] watch_queue: change 2"]


def test_import_range_refuses_non_range_and_existing_output(repo, tmp_path):
    with pytest.raises(InputError, match="is not a range"):
        import_range(repo, "HEAD", tmp_path / "x")
    out = tmp_path / "y"
    import_range(repo, "HEAD^1..HEAD^2", out)
    with pytest.raises(InputError, match="already exists"):
        import_range(repo, "HEAD^1..HEAD^2", out)
    assert import_range(repo, "HEAD^1..HEAD^2", out, force=True)


def test_import_mbox_skips_cover_letter(tmp_path):
    cover = ("From nobody Mon Sep 17 00:00:00 2001\nFrom: Dev <d@example.org>\n"
             "Subject: [PATCH 0/2] cover letter\n\nThis series...\n\n")
    patches = "".join(p.read_text() for p in sorted(TWO.glob("*.patch")))
    mbox = tmp_path / "thread.mbox"
    mbox.write_text(cover + patches)
    out = tmp_path / "imported"
    names = import_mbox(mbox, out)
    assert len(names) == 2 and names[0].startswith("0001-watch_queue-note")
    series = load_series(tmp_path, "imported")
    assert series.hash  # every patch parses
    assert "watch_queue_slots" in series.patches[1].path.read_text()


def test_import_directory_validates_before_writing(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for p in TWO.glob("*.patch"):
        (source / p.name).write_text(p.read_text())
    assert len(import_directory(source, tmp_path / "ok")) == 2
    (source / "0003-broken.patch").write_text("not a patch\n")
    with pytest.raises(InputError, match="0003-broken.patch"):
        import_directory(source, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_import_directory_refuses_a_cut_off_patch_naming_it(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(TWO, source)
    victim = sorted(source.glob("*.patch"))[-1]
    text = victim.read_text()
    victim.write_text(text[:text.index("@@")] + text[text.index("@@"):][:120])  # mid-hunk
    with pytest.raises(InputError, match=f"{victim}:\\d+: the patch is cut off or corrupt"):
        import_directory(source, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
