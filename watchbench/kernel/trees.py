"""Kernel trees: the Debian default, a tarball, or a git worktree of a user's checkout.

Each tree lives under ``<cache>/trees/<id>/`` with its work tree in ``src/`` and its
state in ``tree.json``. Trees we extract ourselves become git repositories with a
tagged baseline commit, so patch series can be applied and undone with git.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from watchbench.errors import CommandError, InputError, TreeError
from watchbench.host.files import write_atomically
from watchbench.host.git import FIXED_DATE, Git
from watchbench.host.lock import Lock
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Process, Runner, alive, default_runner
from watchbench.kernel import journal
from watchbench.settings import Settings

META = journal.STATE
BASE_TAG = "watchbench/base"


class TreeKind(StrEnum):
    """Where a tree came from: the pinned Debian source package, a tarball, or a git
    worktree of the user's own checkout."""

    DEBIAN = "debian"
    TARBALL = "tarball"
    USER = "user"


@dataclass
class Tree:
    """One kernel source tree and what watchbench has done to it."""

    id: str
    root: Path
    kind: TreeKind
    origin: str
    base: str
    base_label: str
    series: str = ""
    series_hash: str = ""
    series_patches: list[str] = field(default_factory=list)
    applied_head: str = ""
    config_hash: str = ""
    config_head: str = ""  # the commit the configuration was made on
    config_fragments: list[str] = field(default_factory=list)
    config_additions: list[str] = field(default_factory=list)  # its --kconfig-add options

    @property
    def src(self) -> Path:
        return self.root / "src"

    def git(self, runner: Runner = default_runner) -> Git:
        return Git(self.src, runner)

    def save(self) -> None:
        data = asdict(self)
        data["root"] = str(self.root)
        write_atomically(self.root / META, json.dumps(data, indent=2) + "\n")

    def refresh(self) -> None:
        """Take the state file's fields again (after another command changed it)."""
        disk = Tree.load(self.root)
        for name in asdict(self):
            if name != "root":
                setattr(self, name, getattr(disk, name))

    @classmethod
    def load(cls, root: Path) -> Tree:
        path = root / META
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TreeError(
                f"kernel tree state unreadable: {path}: {exc}",
                hint="run `./wb kernel.fetch` again to recreate it",
            ) from exc
        data["root"] = Path(data["root"])
        data["kind"] = TreeKind(data["kind"])
        return cls(**data)


def trees_dir(settings: Settings) -> Path:
    return settings.cache_dir / "trees"


def set_active(settings: Settings, tree: Tree | str) -> None:
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    tree_id = tree if isinstance(tree, str) else tree.id
    write_atomically(settings.cache_dir / "active-tree", tree_id + "\n")


@contextlib.contextmanager
def lock(tree: Tree, *, wait: bool = True, progress: Progress | None = None,
         runner: Runner = default_runner) -> Iterator[None]:
    """The lock every command that changes ``tree`` (its commit, series, configuration,
    build directory) holds while it does. Taking it first puts the tree back from the
    journal of a command that was killed while it held it (``kernel.journal``)."""
    progress = progress or Silent()
    with Lock(tree.root / "lock", f"kernel tree {tree.id}", wait=wait,
              progress=progress) as held:
        if held.first:
            undone = journal.recover(tree.root, tree.git(runner))
            if undone is not None:
                progress.step(f"tree {tree.id} put back as it was before the interrupted "
                              f"{undone.describe()}")
                tree.refresh()
        yield


def active_id(settings: Settings) -> str | None:
    """The active tree's id, or None before the first ``kernel.fetch``."""
    marker = settings.cache_dir / "active-tree"
    return marker.read_text().strip() if marker.exists() else None


def active(settings: Settings) -> Tree:
    """The tree the last ``kernel.fetch`` selected."""
    marker = settings.cache_dir / "active-tree"
    if not marker.exists():
        raise TreeError(
            f"no kernel tree selected yet (looked for {marker})",
            hint="run `./wb kernel.fetch` (Debian default) or `./wb kernel.fetch --tree PATH --base REF`",
        )
    return Tree.load(trees_dir(settings) / marker.read_text().strip())


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+~-]+", "_", text)


def download_debian_source(settings: Settings, runner: Runner = default_runner) -> Path:
    """Fetch the pinned linux-source .deb into the download cache (once)."""
    pkg, ver = settings.kernel.package, settings.kernel.version
    downloads = settings.cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    deb = downloads / f"{pkg}_{ver.replace(':', '%3a')}_all.deb"
    if deb.exists():
        return deb
    # Into a directory of its own first: a download cut off by a kill is never taken as the .deb.
    for stale in downloads.glob(".partial-*"):  # left by a download that was killed
        if not alive(stale.name.rsplit("-", 1)[1]):
            shutil.rmtree(stale, ignore_errors=True)
    partial = downloads / f".partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        _apt_download(pkg, ver, partial, runner)
        found = sorted(partial.glob(f"{pkg}_*.deb"))
        if not found:
            raise TreeError(f"apt-get download left no {pkg} .deb in {partial}")
        found[-1].rename(deb)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return deb


def _apt_download(pkg: str, ver: str, into: Path, runner: Runner) -> None:
    argv = ["apt-get", "download", f"{pkg}={ver}"]
    try:
        runner.run(argv, cwd=into, timeout=1800)
    except CommandError:
        runner.run(["apt-get", "update"], timeout=900, check=False)
        try:
            runner.run(argv, cwd=into, timeout=1800)
        except CommandError as exc:
            policy = runner.run(["apt-cache", "policy", pkg], check=False).stdout
            raise TreeError(
                f"could not download {pkg}={ver} with apt-get\n{exc.output.strip()}\n{policy}",
                hint="pick an available version and set watchbench.kernel.version "
                     "(invoke.yaml or ~/.invoke.yaml)",
            ) from exc


def _tar_argv(tarball: Path, dest: Path) -> list[str]:
    argv = ["tar", "-x", "-f", str(tarball), "-C", str(dest), "--strip-components=1"]
    argv.append("--no-same-owner")
    if tarball.name.endswith((".xz", ".txz")):
        argv += ["-I", "xz -T0"]  # the Debian tarball has many xz blocks: decompress on all CPUs
    return argv


def _tree_files(src: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(mode, path) of every regular file, and the symlinks, below ``src`` (no .git).

    Walked here, not with git, because Debian's .gitignore ends with "/*" and ignores all.
    """
    regular: list[tuple[str, str]] = []
    links: list[str] = []
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]:
            path = os.path.join(dirpath, name)
            relpath = name if rel == "." else f"{rel}/{name}"
            if os.path.islink(path):
                links.append(relpath)
            else:
                regular.append(("100755" if os.access(path, os.X_OK) else "100644", relpath))
    return regular, links


def _add_all(src: Path, runner: Runner) -> None:
    """``git add -f -A`` on all CPUs: hash and store the blobs in parallel, then one index.

    A single git add of the 1.5 GB Debian tree takes ~35 s on one core here; the objects
    are independent, so two hash-object processes halve that.
    """
    regular, links = _tree_files(src)
    workers = max(1, min(os.cpu_count() or 1, 4))
    chunks = [regular[i::workers] for i in range(workers)]
    procs = [runner.spawn(["git", "-C", str(src), "hash-object", "-w", "--no-filters",
                           "--stdin-paths"], stdin_pipe=True) for _ in chunks]

    def feed(proc: Process, chunk: list[tuple[str, str]]) -> None:
        proc.write("".join(path + "\n" for _, path in chunk).encode())
        proc.close_stdin()

    feeders = [threading.Thread(target=feed, args=pair, daemon=True)
               for pair in zip(procs, chunks, strict=True)]
    for feeder in feeders:
        feeder.start()
    entries: list[str] = []
    for proc, chunk in zip(procs, chunks, strict=True):
        with proc:
            hashes = [line for line in proc.lines() if line]
            if proc.wait() != 0 or len(hashes) != len(chunk):
                raise TreeError(f"git hash-object failed in {src}: {hashes[-3:]}")
        entries += [f"{mode} {sha}\t{path}" for (mode, path), sha in zip(chunk, hashes, strict=True)]
    git = Git(src, runner)
    git("update-index", "--add", "--index-info", input="\n".join(entries) + "\n", timeout=600)
    for start in range(0, len(links), 500):
        git("update-index", "--add", "--", *links[start:start + 500])
    git("update-index", "-q", "--refresh", check=False, timeout=900)  # record stat data


def _make_repo(src: Path, label: str, runner: Runner) -> str:
    """Turn an extracted tree into a git repository with one tagged baseline commit."""
    git = Git(src, runner)
    git("init", "-q")
    for key, value in (("gc.auto", "0"), ("feature.manyFiles", "true"), ("core.hooksPath", "/dev/null")):
        git("config", key, value)
    _add_all(src, runner)
    date = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
    git("commit", "-q", "--no-verify", "-m", f"watchbench baseline: {label}", env=date)
    git("tag", BASE_TAG)
    return git.head()


def _extract(tarball: Path, root: Path, kind: TreeKind, origin: str, label: str, tree_id: str,
             runner: Runner, progress: Progress) -> Tree:
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "src").mkdir(parents=True)
    start = time.monotonic()
    progress.step(f"extracting {tarball.name}")
    runner.run(_tar_argv(tarball, partial / "src"), timeout=1800)
    if not (partial / "src" / "Makefile").exists() or not (partial / "src" / "Kconfig").exists():
        shutil.rmtree(partial, ignore_errors=True)
        raise InputError(
            f"{tarball} does not hold a kernel tree (no top-level Makefile and Kconfig)",
            hint="pass a kernel source tarball such as linux-6.12.tar.xz",
        )
    progress.step(f"extracted in {time.monotonic() - start:.0f} s; committing the baseline "
                  "(all files, as git add -f would)")
    committing = time.monotonic()
    base = _make_repo(partial / "src", label, runner)
    progress.step(f"committed in {time.monotonic() - committing:.0f} s")
    tree = Tree(tree_id, root, kind, origin, base, label)
    tree.root = partial
    tree.save()
    partial.rename(root)
    tree.root = root
    tree.save()
    progress.done(f"tree {tree_id} ready in {time.monotonic() - start:.0f} s")
    return tree


def fetch_debian(settings: Settings, runner: Runner = default_runner,
                 progress: Progress | None = None) -> Tree:
    """The default tree: Debian's linux-source package at the pinned version."""
    progress = progress or Silent()
    tree_id = f"debian-{_safe(settings.kernel.version)}"
    root = trees_dir(settings) / tree_id
    if (root / META).exists():
        return Tree.load(root)
    with _creating(settings, tree_id, progress):  # two first fetches: one extracts
        if (root / META).exists():
            return Tree.load(root)
        return _fetch_debian(settings, root, tree_id, runner, progress)


def _creating(settings: Settings, tree_id: str, progress: Progress) -> Lock:
    return Lock(trees_dir(settings) / f"{tree_id}.lock", f"the creation of tree {tree_id}",
                progress=progress)


def _fetch_debian(settings: Settings, root: Path, tree_id: str, runner: Runner,
                  progress: Progress) -> Tree:
    progress.step(f"downloading {settings.kernel.package}={settings.kernel.version}")
    deb = download_debian_source(settings, runner)
    unpack = root.with_name(root.name + ".deb")
    shutil.rmtree(unpack, ignore_errors=True)
    unpack.mkdir(parents=True)
    runner.run(["dpkg", "-x", str(deb), str(unpack)], timeout=600)
    tarballs = sorted((unpack / "usr" / "src").glob("linux-source-*.tar.*"))
    if not tarballs:
        raise TreeError(f"{deb} holds no usr/src/linux-source-*.tar.* (unpacked in {unpack})")
    label = f"debian {settings.kernel.package} {settings.kernel.version}"
    try:
        return _extract(tarballs[0], root, TreeKind.DEBIAN, str(deb), label, tree_id, runner, progress)
    finally:
        shutil.rmtree(unpack, ignore_errors=True)


def fetch_tarball(settings: Settings, tarball: Path, runner: Runner = default_runner,
                  progress: Progress | None = None) -> Tree:
    """A kernel tarball the user has (linux-X.Y.tar.xz or similar)."""
    tarball = tarball.expanduser().resolve()
    if not tarball.is_file():
        raise InputError(f"no such tarball: {tarball}")
    digest = hashlib.sha256()
    with tarball.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    stem = re.sub(r"\.tar(\.\w+)?$|\.t\w z$", "", tarball.name)
    tree_id = f"tarball-{_safe(stem)}-{digest.hexdigest()[:10]}"
    root = trees_dir(settings) / tree_id
    progress = progress or Silent()
    with _creating(settings, tree_id, progress):
        if (root / META).exists():
            return Tree.load(root)
        return _extract(tarball, root, TreeKind.TARBALL, str(tarball), tarball.name, tree_id,
                        runner, progress)


def user_tree_id(repo: Path) -> str:
    """The id of the worktree watchbench keeps for the checkout at ``repo`` (resolved)."""
    return f"user-{_safe(repo.name)}-{hashlib.sha1(str(repo).encode()).hexdigest()[:8]}"


def fetch_user(settings: Settings, repo: Path, base: str, runner: Runner = default_runner,
               wait: bool = True) -> Tree:
    """A worktree of the user's git checkout at ``base``; their checkout is never touched.
    ``wait`` False: fail at once when another command holds the worktree."""
    repo = repo.expanduser().resolve()
    user = Git(repo, runner)
    if not repo.is_dir() or not user.is_repo():
        raise InputError(f"--tree {repo} is not a git checkout", hint="pass the path of a kernel git clone")
    commit = user.rev(base)
    if commit is None:
        raise InputError(f"--base {base!r} does not name a commit in {repo}",
                         hint="use a tag, branch or commit id that `git rev-parse` knows there")
    if not (repo / "Kconfig").exists():
        raise InputError(f"{repo} does not look like a kernel tree (no top-level Kconfig)")
    tree_id = user_tree_id(repo)
    with _creating(settings, tree_id, Silent()):  # two commands adding the worktree at once
        return _fetch_user(settings, repo, user, base, commit, tree_id, runner, wait)


def _fetch_user(settings: Settings, repo: Path, user: Git, base: str, commit: str,
                tree_id: str, runner: Runner, wait: bool = True) -> Tree:
    root = trees_dir(settings) / tree_id
    src = root / "src"
    if (root / META).exists() and src.exists():
        tree = Tree.load(root)
        if tree.base == commit:
            return tree
        with lock(tree, wait=wait):  # a command working on it finishes first
            dirty = tree.git(runner).dirty()
            if dirty:
                raise TreeError(f"worktree {src} has uncommitted changes: {', '.join(dirty[:5])}",
                                hint="commit or discard them there (or `./wb patches.reset "
                                     "--force`) first")
            tree.git(runner)("checkout", "-q", "--detach", commit)
            return _rebased(tree, commit, base)
    else:
        _sparse_shared(user, repo)  # refused before anything is added to their repository
        root.mkdir(parents=True, exist_ok=True)
        if src.exists():  # a worktree added, then cut short before its state was saved
            shutil.rmtree(src)
        user("worktree", "prune")
        # A sparse checkout's patterns would follow into the worktree (git copies them),
        # and a kernel does not build from a few directories: the worktree is whole.
        user("-c", "core.sparseCheckout=false", "worktree", "add", "-q", "--detach",
             str(src), commit, timeout=1800)
        worktree = Git(src, runner)
        if worktree("config", "--get", "core.sparseCheckout",
                    check=False).stdout.strip() == "true":
            worktree("config", "--worktree", "core.sparseCheckout", "false")
        tree = Tree(tree_id, root, TreeKind.USER, str(repo), commit, base)
    return _rebased(tree, commit, base)


def _sparse_shared(user: Git, repo: Path) -> None:
    """Sparse checkout on in the repository's shared config (not per worktree) would make
    our worktree sparse too, and it cannot be turned off there without writing the
    user's config: refused. Per-worktree settings (``git sparse-checkout`` writes them
    so) are turned off in our worktree's own config."""
    if user("config", "--get", "core.sparseCheckout", check=False).stdout.strip() != "true":
        return
    if user("config", "--get", "extensions.worktreeConfig",
            check=False).stdout.strip() == "true":
        return
    raise TreeError(f"{repo} has sparse checkout on in its shared config: a worktree of "
                    "it would be sparse too, and a kernel does not build from part of "
                    "its tree",
                    hint="keep it per worktree (git config extensions.worktreeConfig "
                         "true; git config --worktree core.sparseCheckout true), or use "
                         "a full clone: ./wb ci --tree ~/linux --base v6.12 --series NAME")


def _rebased(tree: Tree, commit: str, base: str) -> Tree:
    """The tree's state once it sits on ``commit``: that is its base, no series applied."""
    tree.base, tree.base_label = commit, base
    tree.series, tree.series_hash, tree.series_patches, tree.applied_head = "", "", [], ""
    tree.save()
    return tree


def select(settings: Settings, tree: str | None = None, base: str | None = None,
           tarball: str | None = None, runner: Runner = default_runner,
           progress: Progress | None = None) -> Tree:
    """Select (and if needed create) the tree later steps work on: the user's checkout at
    ``base``, a tarball, or the pinned Debian source; it becomes the active tree."""
    if tree and tarball:
        raise InputError("give either --tree or --tarball, not both")
    if tree:
        if not base:
            raise InputError("--tree needs --base REF (the commit the series applies to)")
        result = fetch_user(settings, Path(tree), base, runner)
    elif tarball:
        result = fetch_tarball(settings, Path(tarball), runner, progress)
    else:
        result = fetch_debian(settings, runner, progress)
    set_active(settings, result)
    return result
