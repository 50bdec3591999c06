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


# --- names, --force and failures (issue 28) ---------------------------------------------


def _mbox(tmp_path: Path, order=(0, 1), name="thread.mbox") -> Path:
    parts = [p.read_text() for p in sorted(TWO.glob("*.patch"))]
    mbox = tmp_path / name
    mbox.write_text("".join(parts[i] for i in order))
    return mbox


def test_force_replaces_only_after_the_new_series_is_whole(tmp_path):
    out = tmp_path / "patches" / "mine"
    import_mbox(_mbox(tmp_path), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.mbox"
    bad.write_text(_mbox(tmp_path).read_text().replace("[PATCH 2/2]", "[PATCH 3/3]"))
    with pytest.raises(InputError):
        import_mbox(bad, out, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["mine"]  # no leftovers
    assert import_mbox(_mbox(tmp_path), out, force=True)


def test_force_replaces_a_symlink_not_what_it_points_at(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("x")
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "mine").symlink_to(precious)
    import_mbox(_mbox(tmp_path), tmp_path / "patches" / "mine", force=True)
    assert (precious / "keep").read_text() == "x"
    assert not (tmp_path / "patches" / "mine").is_symlink()


def test_a_killed_import_leaves_nothing_that_blocks_a_retry(tmp_path):
    stale = tmp_path / "patches" / ".mine.import-999999999"
    stale.mkdir(parents=True)
    (stale / "series").write_text("x\n")
    assert import_mbox(_mbox(tmp_path), tmp_path / "patches" / "mine")
    assert not stale.exists()


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "/abs", "", ".hidden", "a" * 65])
def test_a_series_name_is_never_a_path(name):
    from watchbench.kernel.series import check_name

    with pytest.raises(InputError, match="--name"):
        check_name(name)


def test_an_mbox_in_any_order_is_imported_in_numeric_order(tmp_path):
    names = import_mbox(_mbox(tmp_path, order=(1, 0)), tmp_path / "out")
    series = load_series(tmp_path, "out")
    assert [p.subject[:11] for p in series.patches] == ["[PATCH 1/2]", "[PATCH 2/2]"], names


def test_v1_and_v2_are_refused_unless_one_is_chosen(tmp_path):
    v1 = _mbox(tmp_path).read_text()
    v2 = v1.replace("[PATCH ", "[PATCH v2 ")
    mbox = tmp_path / "both.mbox"
    mbox.write_text(v1 + v2)
    with pytest.raises(InputError, match="versions v1, v2"):
        import_mbox(mbox, tmp_path / "out")
    import_mbox(mbox, tmp_path / "out", version=2)
    assert all("v2" in p.subject for p in load_series(tmp_path, "out").patches)


def test_a_quilt_series_file_is_honoured_and_plain_diffs_get_a_subject(tmp_path):
    source = tmp_path / "quilt"
    source.mkdir()
    for p in TWO.glob("*.patch"):
        shutil.copy(p, source / p.name)
    first, second = sorted(p.name for p in TWO.glob("*.patch"))
    (source / "series").write_text(f"# quilt\n{first} -p1\n{second}\n")
    plain = source / "plain.diff"  # a quilt patch: no mail headers at all
    text = (source / second).read_text()
    plain.write_text(text[text.index("diff --git"):].split("\n-- \n")[0] + "\n")
    (source / "series").write_text(f"{first}\nplain.diff\n")
    import_directory(source, tmp_path / "out")
    series = load_series(tmp_path, "out")
    assert [p.subject for p in series.patches][1] == "[PATCH] plain"


def test_crlf_rename_mode_and_binary_patches_import_as_git_am_takes_them(repo, tmp_path):
    git = Git(repo)
    git("mv", "Kconfig", "Kconfig.renamed")
    git("commit", "-q", "-m", "rename")
    (repo / "watch_queue.c").chmod(0o755)
    git("commit", "-q", "-am", "mode")
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    git("add", "blob.bin")
    git("commit", "-q", "-m", "binary")
    names = import_range(repo, "HEAD~3..HEAD", tmp_path / "out")
    assert len(names) == 3
    files = load_series(tmp_path, "out").patches
    assert "Kconfig" in files[0].files and "watch_queue.c" in files[1].files
    assert "GIT binary patch" in files[2].path.read_text()
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for p in TWO.glob("*.patch"):
        (crlf / p.name).write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    import_directory(crlf, tmp_path / "fromcrlf")
    assert all(b"\r" not in p.path.read_bytes()
               for p in load_series(tmp_path, "fromcrlf").patches)
