"""allnoconfig is a pure function of what Kconfig reads: the Kconfig files, the scripts
they call, the top Makefile's exports, the toolchain they probe and our merged fragment.
Its output is cached under that key, so composing a variant whose patches leave all of
those alone (most series: they change C files) runs no make at all."""

from __future__ import annotations

import hashlib
from pathlib import Path

from watchbench.host.files import write_atomically
from watchbench.host.runner import Runner
from watchbench.kernel.trees import Tree

# What Kconfig reads from the tree: every Kconfig file, the scripts its $(shell,...) calls
# run (scripts/Kconfig.include: cc-version.sh, ld-version.sh, ...), and the Makefiles
# that export CC, LD and the kernel version into it.
INPUTS = (":(glob)**/Kconfig*", "scripts", "Makefile", "arch/x86/Makefile")
# The toolchain Kconfig probes (CONFIG_CC_VERSION_TEXT, cc-option, ld-option, as-version).
TOOLS = (("gcc", "--version"), ("ld", "--version"), ("as", "--version"))


def cache_key(tree: Tree, requested: str, runner: Runner) -> str | None:
    """The key of an allnoconfig of ``tree`` with ``requested`` forced in; None when a
    file Kconfig reads has uncommitted changes (then nothing is cached)."""
    git = tree.git(runner)
    if git("status", "--porcelain", "--untracked-files=no", "--", *INPUTS).stdout.strip():
        return None
    digest = hashlib.sha256()
    digest.update(git("ls-files", "-s", "--", *INPUTS).stdout.encode())
    for argv in TOOLS:
        lines = runner.run(list(argv)).stdout.splitlines()
        digest.update(f"\0{lines[0] if lines else ''}".encode())
    digest.update(b"\0" + requested.encode())
    return digest.hexdigest()[:24]


def directory(cache_dir: Path) -> Path:
    """Where the configs are kept, one file per key."""
    return cache_dir / "kconfig"


def cached(cache_dir: Path, key: str | None) -> str | None:
    """The .config an allnoconfig with this key made before, or None."""
    if key is None:
        return None
    path = directory(cache_dir) / f"{key}.config"
    return path.read_text() if path.is_file() else None


def remember(cache_dir: Path, key: str | None, text: str) -> None:
    """Keep ``text`` as the .config of ``key`` (None: nothing to key it by)."""
    if key is not None:  # resolved: a shared kconfig/ (a symlink) may be gone meanwhile
        where = directory(cache_dir).resolve()
        where.mkdir(parents=True, exist_ok=True)
        write_atomically(where / f"{key}.config", text)
