"""The one class that runs the kernel's make (configuration and builds)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from watchbench.errors import BuildError, CommandError, ConfigError
from watchbench.host.runner import Completed, Runner, default_runner

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


class KernelMake:
    """make -C <src> O=<out> for x86_64, with ccache and reproducible build ids."""

    def __init__(self, src: Path, out: Path, *, jobs: int = 1, ccache_dir: Path | None = None,
                 ccache_basedir: Path | None = None, ccache_remote: str = "",
                 ccache_reshare: bool = False, runner: Runner = default_runner):
        self.src = Path(src)
        self.out = Path(out)
        self.jobs = jobs
        self.ccache_dir = ccache_dir
        # Paths below the base dir are hashed relative, so two trees share cache hits.
        self.ccache_basedir = ccache_basedir or self.src.parent
        self.ccache_remote = ccache_remote  # ccache remote_storage entries (kernel.ccache)
        self.ccache_reshare = ccache_reshare  # local hits are written to the remote too (fill it)
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
            if self.ccache_remote:
                env["CCACHE_REMOTE_STORAGE"] = self.ccache_remote
                # ccache refuses "0" for a boolean: the negative has a variable of its own.
                env["CCACHE_RESHARE" if self.ccache_reshare else "CCACHE_NORESHARE"] = "1"
        env.update(extra)
        return env

    def _config_error(self, what: str, log: Path, exc: CommandError) -> ConfigError:
        text = log.read_text(errors="replace") if log.exists() else exc.output
        tools = missing_tools(text)
        hint = (f"{', '.join(tools)}: not installed; `./wb deps` installs the host tools"
                if tools else None)
        return ConfigError(f"make {what} failed in {self.src}" + (
            f" ({', '.join(tools)} not found)" if tools else ""), log=log, hint=hint)

    def allnoconfig(self, allconfig: Path) -> Completed:
        """allnoconfig with our merged fragment forced in (as tinyconfig does, minus its choices)."""
        self.out.mkdir(parents=True, exist_ok=True)
        log = self.out / "config.log"
        try:
            return self.runner.run(self.argv("allnoconfig"), env=self.env(KCONFIG_ALLCONFIG=str(allconfig)),
                                   timeout=900, log=log)
        except CommandError as exc:
            raise self._config_error("allnoconfig", log, exc) from exc

    def olddefconfig(self) -> Completed:
        log = self.out / "config.log"
        try:
            return self.runner.run(self.argv("olddefconfig"), env=self.env(), timeout=900, log=log)
        except CommandError as exc:
            raise self._config_error("olddefconfig", log, exc) from exc

    def build(self, target: str, log: Path, on_line: Callable[[str], None] | None = None) -> Completed:
        """Build ``target``; a failure raises BuildError with the first errors and the log."""
        try:
            return self.runner.stream(self.argv(target), env=self.env(), log=log, on_line=on_line)
        except CommandError as exc:
            text = log.read_text(errors="replace") if log.exists() else exc.output
            errors = first_errors(text) or text.strip().splitlines()[-5:]
            tools = missing_tools(text)
            raise BuildError(
                f"kernel build failed ({target}) in {self.out}:\n  " + "\n  ".join(errors),
                log=log,
                hint=(f"{', '.join(tools)}: not installed; `./wb deps` installs the host tools"
                      if tools else "fix the errors above (the full log has the context), "
                      "then `inv build` again"),
            ) from exc

    def headers(self, log: Path) -> Path:
        """The tree's exported UAPI headers (``make headers``, which needs no rsync, unlike
        headers_install): what its own samples and selftests build against
        (guest.clients builds samples/watch_queue from them). Returns their include dir."""
        try:
            self.runner.run(self.argv("headers"), env=self.env(), timeout=900, log=log)
        except CommandError as exc:
            raise BuildError(f"make headers failed in {self.out}", log=log,
                             hint="the tree's UAPI headers do not export; see the log") from exc
        return self.out / "usr" / "include"

    def kernelrelease(self) -> str:
        return self.runner.run(self.argv("-s", "kernelrelease"), env=self.env()).stdout.strip()
