"""The parallel `git add -f -A` gives exactly the tree git itself would make."""

import os

from watchbench.host.git import Git
from watchbench.kernel.trees import _make_repo


def populate(root):
    (root / "kernel").mkdir(parents=True)
    (root / ".gitignore").write_text("#\n/*\n!/debian/\n")  # Debian's: ignores everything
    (root / "Makefile").write_text("all:\n")
    (root / "kernel" / "watch_queue.c").write_text("int x;\n" * 100)
    script = root / "scripts.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    os.symlink("kernel/watch_queue.c", root / "link.c")
    os.symlink("kernel", root / "linkdir")
    (root / "empty").write_text("")
    for i in range(50):
        (root / "kernel" / f"f{i}.c").write_text(f"int f{i};\n")


def test_parallel_add_matches_git_add(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    populate(ours)
    populate(theirs)
    head = _make_repo(ours, "label", Git(ours).runner)
    g = Git(theirs)
    g("init", "-q")
    g("add", "-f", "-A", ".")
    assert Git(ours).out("rev-parse", f"{head}^{{tree}}") == g.out("write-tree")
    assert Git(ours).dirty() == []
    assert Git(ours).out("ls-files", "-s", "scripts.sh").startswith("100755")
    assert Git(ours).out("ls-files", "-s", "linkdir").startswith("120000")
