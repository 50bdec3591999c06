"""The one class that runs the kernel's make (configuration and builds)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from watchbench.errors import BuildError, CommandError, ConfigError, SandboxViolation
from watchbench.host import sandbox
from watchbench.host.runner import Completed, Runner, default_runner
from watchbench.kernel import ccache

# Fixed so that rebuilding the same source gives the same image and ccache hits on version.c.
REPRODUCIBLE = {
    "KBUILD_BUILD_TIMESTAMP": "Sat Jan  1 00:00:00 UTC 2000",
    "KBUILD_BUILD_USER": "watchbench",
    "KBUILD_BUILD_HOST": "watchbench",
}
COMPILER_ERROR = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: (?P<msg>.*)$")
LINKER_ERROR = re.compile(r"^(?:ld|x86_64-linux-gnu-ld)(?:\.bfd)?: .*(?:undefined reference|error).*$")
MAKE_STEP = re.compile(r"^\s+(CC|LD|AR|AS|HOSTCC|HOSTLD|GEN|CPP|OBJCOPY|VDSO|RELOCS|MKPIGGY|"
                       r"ZOFFSET|VOFFSET|BUILD|SYSTBL|SYSHDR|WRAP|UPD|CHK|POLICY|LDS|DESCEND|CALL|"
                       r"SYNC|MKCAP|HYPERCAP|CC \[M\]|COPY|XZKERN|GZIP|KSYMS|SORTTAB|NM)\s+(\S+)")


UNTRUSTED = ("the series under test tried to read or write the host; the sandbox refused it, "
             "so nothing outside the build directory was read or changed (docs/security.md)")
_NOT_FOUND = re.compile(r"^(?:/bin/sh: \d+: |sh: |bash: |make(?:\[\d+\])?: )?([\w.+-]+): "
                       r"(?:command )?not found$", re.M)


def missing_tools(log: str) -> list[str]:
    """Host programs a make run could not start (``/bin/sh: 1: flex: not found``), once
    each in the order they failed: the kernel's build scripts call flex, bison, bc, perl."""
    return list(dict.fromkeys(_NOT_FOUND.findall(log)))


def first_errors(log_text: str, limit: int = 5) -> list[str]:
    """The first compiler/linker errors of a build log, as 'file:line: message'."""
    errors: list[str] = []
    for line in log_text.splitlines():
        match = COMPILER_ERROR.match(line)
        if match:
            errors.append(f"{match['file']}:{match['line']}: {match['msg']}")
        elif LINKER_ERROR.match(line):
            errors.append(line.strip())
        if len(errors) >= limit:
            break
    return errors


def worktree_git_dirs(src: Path) -> tuple[Path, ...]:
    """The git directories a worktree's ``.git`` file points to (its own under the user's
    repository, and the repository's common one holding the objects): the kernel's
    setlocalversion runs git, so a sandboxed ``--tree`` build must read them."""
    dot_git = src / ".git"
    if not dot_git.is_file():
        return ()
    text = dot_git.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return ()
    own = (src / text.split(":", 1)[1].strip()).resolve()
    common = own / "commondir"
    shared = (own / common.read_text().strip()).resolve() if common.is_file() else own
    return tuple(dict.fromkeys((shared, own)))


class KernelMake:
    """make -C <src> O=<out> for x86_64, with ccache and reproducible build ids; with
    ``sandboxed``, in bubblewrap (host.sandbox): the tree read-only, ``out`` and the
    ccache directory writable, nothing else of the user's."""

    def __init__(self, src: Path, out: Path, *, jobs: int = 1, ccache_dir: Path | None = None,
                 ccache_basedir: Path | None = None, ccache_remote: str = "",
                 ccache_reshare: bool = False, ccache_trusted: bool = True,
                 sandboxed: bool = False, runner: Runner = default_runner):
        self.src = Path(src)
        self.out = Path(out)
        self.jobs = jobs
        self.ccache_dir = ccache_dir
        # Paths below the base dir are hashed relative, so two trees share cache hits.
        self.ccache_basedir = ccache_basedir or self.src.parent
        self.ccache_remote = ccache_remote  # ccache remote_storage entries (kernel.ccache)
        self.ccache_reshare = ccache_reshare  # local hits are written to the remote too (fill it)
        # An untrusted build (a series under test) only reads a file:// remote (ccache's
        # read-only) and, sandboxed, gets no network remote. The pipeline passes settings
        # ccache_trusted (default false); a KernelMake made by hand (the ccache scripts and
        # tests, which fill a remote) trusts.
        self.ccache_trusted = ccache_trusted
        self.sandboxed = sandboxed
        self.runner = runner

    def argv(self, *targets: str) -> list[str]:
        argv = ["make", "-C", str(self.src), f"O={self.out}", "ARCH=x86_64", f"-j{self.jobs}"]
        if self.ccache_dir:
            argv += ["CC=ccache gcc", "HOSTCC=ccache gcc"]
        return [*argv, *targets]

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(REPRODUCIBLE)
        if self.ccache_dir:
            env.update({
                "CCACHE_DIR": str(self.ccache_dir),
                "CCACHE_BASEDIR": str(self.ccache_basedir),
                "CCACHE_NOHASHDIR": "1",
                "CCACHE_MAXSIZE": "5G",
                "CCACHE_SLOPPINESS": "time_macros,include_file_mtime,include_file_ctime",
                # Depend mode hashes the -MD output instead of running the preprocessor first:
                # measured on kernel/ + mm/ with an empty cache, 148 s -> 107 s (gcc alone 99 s);
                # warm hits are unchanged (all direct).
                "CCACHE_DEPEND": "1",
            })
            remote = " ".join(r.entry for r in ccache.parse_remote(self.ccache_remote)
                              if ccache.allowed(r, sandboxed=self.sandboxed,
                                                trusted=self.ccache_trusted))
            if remote:
                env["CCACHE_REMOTE_STORAGE"] = (remote if self.ccache_trusted else
                                                ccache.read_only(remote))
                # ccache refuses "0" for a boolean: the negative has a variable of its own.
                reshare = self.ccache_reshare and self.ccache_trusted
                env["CCACHE_RESHARE" if reshare else "CCACHE_NORESHARE"] = "1"
        env.update(extra)
        return env

    def sandbox(self, env: dict[str, str], reads: tuple[Path, ...] = (),
                writes: tuple[Path, ...] = ()) -> sandbox.Sandbox:
        """What a make (or a compile of the tree's code) may see: the tree and its git
        directories read-only, the build and ccache directories writable, a file://
        remote cache writable only when trusted; the network only for a trusted build's
        network remote (docs/security.md)."""
        remotes = ccache.parse_remote(self.ccache_remote) if self.ccache_dir else ()
        files = tuple(Path(r.path) for r in remotes if r.scheme == "file")
        cache = (self.ccache_dir,) if self.ccache_dir else ()
        return sandbox.Sandbox(
            readable=(self.src, *worktree_git_dirs(self.src), *reads,
                      *(() if self.ccache_trusted else files)),
            writable=(self.out, *cache, *writes, *(files if self.ccache_trusted else ())),
            env=sandbox.environment(env),
            share_net=any(r.scheme != "file" for r in remotes if ccache.allowed(
                r, sandboxed=True, trusted=self.ccache_trusted)),
            layout=sandbox.host_layout())

    def _command(self, argv: list[str], env: dict[str, str], reads: tuple[Path, ...] = (),
                 writes: tuple[Path, ...] = ()) -> tuple[list[str], dict[str, str] | None,
                                                         sandbox.Sandbox | None]:
        """The argv and environment to hand the runner, and the sandbox they run in."""
        if not self.sandboxed:
            return argv, env, None
        sandbox.require(self.runner)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.ccache_dir:
            self.ccache_dir.mkdir(parents=True, exist_ok=True)
        box = self.sandbox(env, reads, writes)
        return box.argv(argv), None, box

    def _run(self, targets: tuple[str, ...], log: Path | None, timeout: float | None = None,
             reads: tuple[Path, ...] = (), **extra: str) -> Completed:
        argv, env, box = self._command(self.argv(*targets), self.env(**extra), reads)
        done = self.runner.run(argv, env=env, timeout=timeout, log=log)
        self._refuse_reaches(box, done.stdout + done.stderr, log, " ".join(targets))
        return done

    def _refuse_reaches(self, box: sandbox.Sandbox | None, text: str, log: Path | None,
                        what: str) -> None:
        """A sandboxed make that succeeded though something in it was refused a write
        outside its build directory (a ``$(shell ...)`` whose error make ignores) is
        stopped all the same: the series tried to change the host."""
        reached = sandbox.reaches(text, box, writes_only=True) if box else []
        if reached:
            raise SandboxViolation(f"make {what} in {self.src}: {sandbox.describe(reached)}",
                                   log=log, hint=UNTRUSTED)

    def _why(self, box: sandbox.Sandbox | None, text: str) -> str:
        reached = sandbox.reaches(text, box) if box else []
        return f"\n  {sandbox.describe(reached)}" if reached else ""

    def _config_error(self, what: str, log: Path, exc: CommandError) -> ConfigError:
        text = log.read_text(errors="replace") if log.exists() else exc.output
        tools = missing_tools(text)
        hint = (f"{', '.join(tools)}: not installed; `./wb deps` installs the host tools"
                if tools else None)
        box = self.sandbox(self.env()) if self.sandboxed else None
        return ConfigError(f"make {what} failed in {self.src}" + (
            f" ({', '.join(tools)} not found)" if tools else "") + self._why(box, text),
            log=log, hint=hint)

    def allnoconfig(self, allconfig: Path) -> Completed:
        """allnoconfig with our merged fragment forced in (as tinyconfig does, minus its choices)."""
        self.out.mkdir(parents=True, exist_ok=True)
        log = self.out / "config.log"
        try:
            return self._run(("allnoconfig",), log, 900, reads=(Path(allconfig),),
                             KCONFIG_ALLCONFIG=str(allconfig))
        except CommandError as exc:
            raise self._config_error("allnoconfig", log, exc) from exc

    def olddefconfig(self) -> Completed:
        log = self.out / "config.log"
        try:
            return self._run(("olddefconfig",), log, 900)
        except CommandError as exc:
            raise self._config_error("olddefconfig", log, exc) from exc

    def build(self, target: str, log: Path, on_line: Callable[[str], None] | None = None) -> Completed:
        """Build ``target``; a failure raises BuildError with the first errors and the log
        (and, sandboxed, what outside the sandbox it tried to reach)."""
        argv, env, box = self._command(self.argv(target), self.env())
        try:
            done = self.runner.stream(argv, env=env, log=log, on_line=on_line)
        except CommandError as exc:
            text = log.read_text(errors="replace") if log.exists() else exc.output
            errors = first_errors(text) or text.strip().splitlines()[-5:]
            tools = missing_tools(text)
            error = SandboxViolation if self._why(box, text) else BuildError
            raise error(
                f"kernel build failed ({target}) in {self.out}:\n  " + "\n  ".join(errors)
                + self._why(box, text),
                log=log,
                hint=(f"{', '.join(tools)}: not installed; `./wb deps` installs the host tools"
                      if tools else UNTRUSTED if error is SandboxViolation else
                      "fix the errors above (the full log has the context), "
                      "then `./wb build` again"),
            ) from exc
        self._refuse_reaches(box, done.stdout, log, target)
        return done

    def headers(self, log: Path) -> Path:
        """The tree's exported UAPI headers (``make headers``, which needs no rsync, unlike
        headers_install): what its own samples and selftests build against
        (guest.clients builds samples/watch_queue from them). Returns their include dir."""
        try:
            self._run(("headers",), log, 900)
        except CommandError as exc:
            raise BuildError(f"make headers failed in {self.out}", log=log,
                             hint="the tree's UAPI headers do not export; see the log") from exc
        return self.out / "usr" / "include"

    def compile(self, argv: list[str], *, reads: tuple[Path, ...], writes: tuple[Path, ...],
                log: Path, timeout: float) -> Completed:
        """A compiler run on the tree's own code (its samples), in make's sandbox: the
        tree, ``reads`` and ``writes`` as make would see them, nothing else."""
        command, env, box = self._command(list(argv), {}, reads, writes)
        try:
            done = self.runner.run(command, env=env, timeout=timeout, log=log)
        except CommandError as exc:
            reached = sandbox.reaches(exc.output, box) if box else []
            if reached:
                raise SandboxViolation(f"{argv[0]} on the tree's code: "
                                       f"{sandbox.describe(reached)}", log=log,
                                       hint=UNTRUSTED) from exc
            raise
        self._refuse_reaches(box, done.stdout + done.stderr, log, "(a sample)")
        return done

    def kernelrelease(self) -> str:
        return self._run(("-s", "kernelrelease"), None).stdout.strip()
