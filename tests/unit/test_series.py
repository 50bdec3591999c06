from pathlib import Path

import pytest

from watchbench.errors import InputError
from watchbench.kernel.series import load_series, parse_patch

PATCH = """From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: A Developer <dev@example.org>
Date: Mon, 1 Jun 2020 00:00:00 +0000
Subject: [PATCH {n}/2] watch_queue: change number {n}
 continued subject

Body.

Signed-off-by: A Developer <dev@example.org>
---
 kernel/watch_queue.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/kernel/watch_queue.c b/kernel/watch_queue.c
index 1111111..2222222 100644
--- a/kernel/watch_queue.c
+++ b/kernel/watch_queue.c
@@ -10,6 +10,7 @@ first
 a
 a2
 a3
+b
 c
 c2
 c3
@@ -40,3 +41,4 @@ second
 x
+y
 z
 z2
--
2.39.5
"""


def make_series(tmp_path: Path, entries: str, files: dict[str, str]) -> Path:
    directory = tmp_path / "s"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    (directory / "series").write_text(entries)
    return directory


def test_load_valid_series_keeps_order_and_hunks(tmp_path):
    d = make_series(tmp_path, "# comment\n0002-b.patch\n\n0001-a.patch -p1\n",
                    {"0001-a.patch": PATCH.format(n=1), "0002-b.patch": PATCH.format(n=2)})
    series = load_series(tmp_path, str(d))
    assert [p.name for p in series.patches] == ["0002-b.patch", "0001-a.patch"]
    first = series.patches[0]
    assert first.subject == "[PATCH 2/2] watch_queue: change number 2 continued subject"
    assert [h.old_start for h in first.files["kernel/watch_queue.c"]] == [10, 40]
    assert first.hunk_at("kernel/watch_queue.c", 40).number == 2
    assert first.hunk_at("kernel/watch_queue.c", 12).number == 1


def test_series_hash_depends_on_content_not_names(tmp_path):
    a = make_series(tmp_path, "x.patch\n", {"x.patch": PATCH.format(n=1)})
    other = tmp_path / "o"
    other.mkdir()
    (other / "renamed.patch").write_text(PATCH.format(n=1))
    (other / "series").write_text("renamed.patch\n")
    h1 = load_series(tmp_path, str(a)).hash
    assert h1 == load_series(tmp_path, str(other)).hash
    (other / "renamed.patch").write_text(PATCH.format(n=2))
    assert h1 != load_series(tmp_path, str(other)).hash


@pytest.mark.parametrize("entries,files,message", [
    ("", {}, "the series is empty"),
    ("# only comments\n", {}, "the series is empty"),
    ("missing.patch\n", {}, "series:1: 'missing.patch' is listed but no such file"),
    ("a.patch\na.patch\n", {"a.patch": PATCH.format(n=1)}, "series:2: 'a.patch' is listed twice"),
    ("a.patch\n", {"a.patch": "just some text\n"}, "not a git format-patch file"),
    ("a.patch\n", {"a.patch": "Subject: x\n\nno diff here\n"}, "patch has no diff"),
    ("a.patch\n", {"a.patch": "Subject: x\n\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ bogus\n"},
     "malformed hunk header"),
])
def test_bad_series_inputs(tmp_path, entries, files, message):
    d = make_series(tmp_path, entries, files)
    with pytest.raises(InputError, match=message):
        load_series(tmp_path, str(d))


def test_missing_series_directory_and_file(tmp_path):
    with pytest.raises(InputError, match="no series directory"):
        load_series(tmp_path, "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no 'series' file"):
        load_series(tmp_path, "empty")


def test_new_file_patch_indexes_new_path(tmp_path):
    text = ("Subject: add\n\ndiff --git a/n.c b/n.c\nnew file mode 100644\n--- /dev/null\n"
            "+++ b/n.c\n@@ -0,0 +1,2 @@\n+a\n+b\n")
    (tmp_path / "p.patch").write_text(text)
    assert list(parse_patch(tmp_path / "p.patch").files) == ["n.c"]


def test_a_truncated_patch_is_named_as_cut_off_not_as_a_conflict(tmp_path):
    whole = PATCH.format(n=1)
    cut = tmp_path / "cut.patch"
    cut.write_text(whole[:whole.index(" c2")])
    with pytest.raises(InputError) as err:
        parse_patch(cut)
    text = str(err.value)
    assert f"{cut}:18: the patch is cut off or corrupt: hunk 1 of kernel/watch_queue.c" in text
    assert "the file ends at line 23; 2 old and 2 new lines missing" in text and "rebas" in err.value.hint
    assert "will not help" in err.value.hint


def test_a_hunk_longer_than_its_header_is_corrupt(tmp_path):
    bad = tmp_path / "long.patch"
    bad.write_text(PATCH.format(n=1).replace(" z2\n", " z2\n+extra\n"))
    with pytest.raises(InputError, match="follows it but its header counted no more"):
        parse_patch(bad)


def test_a_relative_series_path_is_taken_from_where_the_user_stands(tmp_path, monkeypatch):
    """`inv ci --series tests/data/patches/slow-post`: git am runs in the tree, so the
    patches must be named by absolute paths."""
    here = Path(__file__).resolve().parents[1] / "data" / "patches"
    monkeypatch.chdir(here.parent)
    series = load_series(tmp_path, "patches/slow-post")
    assert series.directory == here / "slow-post"
    assert all(p.path.is_absolute() and p.path.exists() for p in series.patches)
