"""Content-keyed kernel builds.

The build *directory* is per (tree, configuration) so switching series rebuilds only what
changed; the *artifact* (bzImage + .config + provenance) is stored under a key of
(tree base, applied commit, uncommitted diff, .config hash, compiler), so a kernel that was
built once is never built again, and a failed build never produces an artifact.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from watchbench.errors import BuildError, ConfigError
from watchbench.host import sandbox
from watchbench.host.files import write_atomically
from watchbench.host.lock import Lock
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import ccache
from watchbench.kernel.kmake import MAKE_STEP, KernelMake
from watchbench.kernel.trees import Tree
from watchbench.settings import Settings

# What kernel.decode needs to turn a finding's stack trace into file:line, kept beside a
# kernel built with debug info: its vmlinux, and the tree's own scripts (decodecode is what
# decode_stacktrace.sh calls for a "Code:" line). Kept at build time because the tree is
# put back, or moved to another commit, long before a check reads its console; the
# artifact is keyed by the tree's commit, so these are the built commit's scripts.
VMLINUX = "vmlinux"
DECODE_DIR = "decode"
DECODE_SCRIPTS = ("scripts/decode_stacktrace.sh", "scripts/decodecode")
DEBUG_INFO = "CONFIG_DEBUG_INFO=y"


@dataclass
class Kernel:
    """A built kernel and where it came from."""

    key: str
    dir: Path
    release: str
    tree_id: str
    base: str
    base_label: str
    head: str
    series: str
    series_hash: str
    dirty_hash: str
    config_hash: str
    compiler: str
    build_seconds: float
    steps: int
    ccache: dict = field(default_factory=dict)  # kernel.ccache.Stats.provenance of the build

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def dotconfig(self) -> Path:
        return self.dir / "config"

    @property
    def vmlinux(self) -> Path:
        """The ELF image with its symbols and debug info (kept only with debug info)."""
        return self.dir / VMLINUX

    @property
    def decode_script(self) -> Path:
        return self.dir / DECODE_DIR / Path(DECODE_SCRIPTS[0]).name

    def has_debug_info(self) -> bool:
        """Whether its configuration had debug info (what addr2line needs for file:line)."""
        return has_debug_info(self.dotconfig)

    def save(self) -> None:
        data = asdict(self)
        data["dir"] = str(self.dir)
        write_atomically(self.dir / "kernel.json", json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Kernel:
        data = json.loads((directory / "kernel.json").read_text())
        data["dir"] = directory
        return cls(**data)


def has_debug_info(config: Path) -> bool:
    try:
        return DEBUG_INFO in config.read_text(errors="replace").splitlines()
    except OSError:
        return False


def _plain_file(path: Path, inside: Path) -> bool:
    """A regular file that is no link and lies under ``inside``: what a series under test
    wrote (its tree, its build directory) may be a link to a host file, which must not be
    copied into the kernel's artifact (and on into a report)."""
    try:
        resolved = path.resolve(strict=True)
        return (not path.is_symlink() and resolved.is_file()
                and resolved.is_relative_to(inside.resolve()))
    except (OSError, RuntimeError):
        return False


def keep_for_decoding(src: Path, out: Path, staging: Path) -> list[str]:
    """Copy the vmlinux and the tree's decode scripts into ``staging`` when the build had
    debug info (without it they cannot give file:line, and a vmlinux is tens of MB).
    Returns what could not be kept, in words (kernel.decode says why, later)."""
    if not has_debug_info(out / ".config"):
        return []
    missing = []
    if _plain_file(out / VMLINUX, out):
        shutil.copyfile(out / VMLINUX, staging / VMLINUX)
    else:
        missing.append(f"{out / VMLINUX}: not a plain file")
    for name in DECODE_SCRIPTS:
        if not _plain_file(src / name, src):
            missing.append(f"{src / name}: not a plain file")
            continue
        target = staging / DECODE_DIR / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, target)
        target.chmod(0o755)  # decode_stacktrace.sh runs decodecode by its path
    return missing


def compiler_version(runner: Runner = default_runner) -> str:
    return runner.run(["gcc", "--version"]).stdout.splitlines()[0].strip()


def build_key(tree: Tree, head: str, dirty_hash: str, config_hash: str, compiler: str) -> str:
    text = "\n".join([tree.base, head, dirty_hash, config_hash, compiler])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Beside a build's outputs while make runs: its mtime is when the build started.
BUILDING = ".watchbench-building"


def clear_torn(out: Path) -> int:
    """A build killed outright (SIGKILL, or the sandbox's namespace torn down with it, which
    SIGKILLs make) leaves the files it was writing half-written and newer than their
    inputs, so the next make would take them as done: every file written since that build
    started goes (ccache makes the recompiles cheap). Returns how many."""
    marker = out / BUILDING
    try:
        since = marker.stat().st_mtime
    except FileNotFoundError:
        return 0
    removed = 0
    for path in out.rglob("*"):
        try:
            if path != marker and not path.is_symlink() and path.is_file() \
                    and path.stat().st_mtime >= since:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    marker.unlink(missing_ok=True)
    return removed


def build_dir(tree: Tree, config_hash: str) -> Path:
    """Where a tree is built with one configuration (out-of-tree, kept between builds)."""
    return tree.root / "build" / config_hash


def kernels_dir(settings: Settings) -> Path:
    return settings.cache_dir / "kernels"


def _dirty_hash(tree: Tree, runner: Runner) -> str:
    diff = tree.git(runner).out("diff", "HEAD", "--binary")
    return hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else ""


def cold_steps_file(settings: Settings, config_hash: str) -> Path:
    """Where the step count of the last cold build of a configuration is kept."""
    return settings.cache_dir / "build-steps" / f"{config_hash}.steps"


def expected_steps(out: Path, stamp: Path) -> int:
    """The steps make will print, when that is known: only for a cold build (an empty
    build directory) after a cold build of the same configuration was counted. What an
    incremental build will redo is not known before make runs, so it gets no total and
    no estimate (a cold count made a 17 s rebuild say ~771 s left)."""
    cold = not (out / "vmlinux").exists()
    if not cold or not stamp.is_file():
        return 0
    try:
        return int(stamp.read_text())
    except ValueError:
        return 0


class _BuildProgress:
    """Counts make's step lines; with an expected total, estimates the time left."""

    def __init__(self, progress: Progress, expected: int):
        self.progress = progress
        self.expected = expected
        self.steps = 0
        self.start = time.monotonic()

    def __call__(self, line: str) -> None:
        match = MAKE_STEP.match(line)
        if not match:
            return
        self.steps += 1
        elapsed = time.monotonic() - self.start
        of = f"/{self.expected}" if self.expected else ""
        eta = ""
        if self.expected and self.steps > 20:
            left = max(self.expected - self.steps, 0) * elapsed / self.steps
            eta = f", ~{left:.0f} s left"
        self.progress.update(f"{self.steps}{of} {match[1]} {match[2]} ({elapsed:.0f} s{eta})")


def _usable_remotes(settings: Settings, progress: Progress) -> tuple[ccache.Remote, ...]:
    """The configured remote caches that answer now. One that does not is a warning and a
    local build, never a failed one: the remote only saves time."""
    if not settings.ccache or not settings.ccache_remote.strip():
        return ()
    usable = []
    for remote in ccache.parse_remote(settings.ccache_remote):
        if not ccache.allowed(remote, sandboxed=settings.sandbox,
                              trusted=settings.ccache_trusted):
            progress.step(f"warning: remote ccache {remote.shown} not used: an untrusted "
                          "build has no network")
            progress.step("  (a trusted run uses it: ccache_trusted: true, or --trusted)")
            continue
        why = ccache.unreachable(remote)
        if why:
            progress.step(f"warning: remote ccache {remote.shown} unreachable ({why}); "
                          "building with the local cache only")
        else:
            usable.append(remote)
    return tuple(usable)


def build(settings: Settings, tree: Tree, runner: Runner = default_runner,
          progress: Progress | None = None, force: bool = False, wait: bool = True) -> Kernel:
    """Build the configured tree's bzImage; reuse the one cached under the same key.
    ``wait``: for another command building the same kernel (False: LockBusy at once)."""
    progress = progress or Silent()
    head = tree.git(runner).head()
    if not tree.config_hash or tree.config_head != head:
        raise ConfigError(f"{tree.src} is not configured for its current commit {head[:12]}",
                          hint="configure first (`./wb config`); kernel.variant.Composer does "
                               "both in one step")
    dirty = _dirty_hash(tree, runner)
    if dirty:
        progress.step(f"note: building uncommitted changes in {tree.src} (diff {dirty})")
    compiler = compiler_version(runner)
    key = build_key(tree, head, dirty, tree.config_hash, compiler)
    artifact = kernels_dir(settings) / key
    if _complete(artifact) and not force:
        progress.step(f"kernel {key} already built ({artifact})")
        return Kernel.load(artifact)
    # Two trees (a worktree each, two CI jobs on one cache) may compose the same kernel
    # at once: one builds it, the other waits and takes it.
    with Lock(kernels_dir(settings) / f"{key}.lock", f"the build of kernel {key}",
              wait=wait, progress=progress):
        if _complete(artifact) and not force:
            progress.step(f"kernel {key} built meanwhile by another command")
            return Kernel.load(artifact)
        return _build(settings, tree, runner, progress, key, artifact, head, dirty, compiler)


def _complete(artifact: Path) -> bool:
    return (artifact / "kernel.json").exists() and (artifact / "bzImage").exists()


def _build(settings: Settings, tree: Tree, runner: Runner, progress: Progress, key: str,
           artifact: Path, head: str, dirty: str, compiler: str) -> Kernel:
    remotes = _usable_remotes(settings, progress)  # a bad setting fails before make starts
    out = build_dir(tree, tree.config_hash)
    out.mkdir(parents=True, exist_ok=True)
    torn = clear_torn(out)
    if torn:
        progress.step(f"removed {torn} files an interrupted build was writing in {out}")
    shutil.copyfile(tree.root / "configs" / f"{tree.config_hash}.config", out / ".config")
    cache_dir = settings.cache_dir / "ccache"
    make = KernelMake(tree.src, out, jobs=settings.job_count, runner=runner,
                      ccache_dir=cache_dir if settings.ccache else None,
                      ccache_basedir=settings.cache_dir,
                      ccache_remote=" ".join(r.entry for r in remotes),
                      ccache_trusted=settings.ccache_trusted, sandboxed=settings.sandbox)
    if not settings.sandbox:
        progress.step(sandbox.off_warning())
    before = ccache.read_stats(cache_dir, runner) if settings.ccache else None
    stamp = cold_steps_file(settings, tree.config_hash)
    expected = expected_steps(out, stamp)
    cold = not (out / "vmlinux").exists()
    logs = settings.cache_dir / "logs"
    log = logs / f"build-{key}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    progress.step(f"building {tree.base_label}{' + ' + tree.series if tree.series else ''} "
                  f"config {tree.config_hash} with -j{settings.job_count} (log {log})")
    counter = _BuildProgress(progress, expected)
    start = time.monotonic()
    (out / BUILDING).touch()
    try:
        make.build("bzImage", log, on_line=counter)
    except BuildError:  # make stopped on its own: it deleted what it was writing
        (out / BUILDING).unlink(missing_ok=True)
        raise
    (out / BUILDING).unlink(missing_ok=True)
    seconds = time.monotonic() - start
    cached = ccache.read_stats(cache_dir, runner) - before if before is not None else None
    if cached is not None:
        progress.step(cached.describe())
    image = out / "arch" / "x86" / "boot" / "bzImage"
    if not image.exists():
        raise BuildError(f"make succeeded but left no {image}", log=log)
    if cold and counter.steps > 100:  # only a cold build teaches a cold build's count
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(str(counter.steps))

    staging = artifact.with_name(key + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(image, staging / "bzImage")
    shutil.copyfile(out / ".config", staging / "config")
    shutil.copyfile(log, staging / "build.log")
    if (out / "System.map").exists():
        shutil.copyfile(out / "System.map", staging / "System.map")
    for what in keep_for_decoding(tree.src, out, staging):
        progress.step(f"note: not kept for decoding traces: {what}")
    kernel = Kernel(key, staging, make.kernelrelease(), tree.id, tree.base, tree.base_label, head,
                    tree.series, tree.series_hash, dirty, tree.config_hash, compiler,
                    round(seconds, 1), counter.steps,
                    cached.provenance(remotes) if cached is not None else {})
    kernel.save()
    shutil.rmtree(artifact, ignore_errors=True)
    staging.rename(artifact)
    kernel.dir = artifact
    kernel.save()
    progress.done(f"built {kernel.release} in {seconds:.0f} s -> {artifact}/bzImage")
    return kernel
