"""Host tools: check them and install the missing Debian packages."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import DepsError
from watchbench.host.runner import Runner, default_runner


@dataclass(frozen=True)
class Need:
    """A host requirement: satisfied when ``probe`` (a command or a path) exists."""

    package: str
    probe: str


# What the pipeline needs: build, initramfs, boot.
PIPELINE: tuple[Need, ...] = (
    Need("qemu-system-x86", "qemu-system-x86_64"),
    Need("busybox-static", "/bin/busybox"),
    Need("cpio", "cpio"),
    Need("flex", "flex"),
    Need("bison", "bison"),
    Need("bc", "bc"),
    Need("libelf-dev", "/usr/include/libelf.h"),
    Need("libssl-dev", "/usr/include/openssl/ssl.h"),
    Need("ccache", "ccache"),
    Need("gcc", "gcc"),
    Need("make", "make"),
    Need("git", "git"),
    Need("xz-utils", "xz"),
    Need("dpkg", "dpkg"),
    Need("perl", "perl"),
    # keyctl (watch, watch_session, watch_sync) and its test suite's client: `./wb check`
    Need("keyutils", "keyctl"),
    # the sandbox a series' make and compiles run in (host.sandbox, docs/security.md)
    Need("bubblewrap", "bwrap"),
)

# Only the test suite needs these (headless report check, remote ccache, and QEMU's user
# mode, the same release as qemu-system-x86 so the plugin built against its header loads
# in both: the cache model run on user-space programs by tests/unit/test_cache_model.py
# and bench/scripts).
TESTS: tuple[Need, ...] = (Need("chromium", "chromium"),
                           Need("redis-server", "redis-server"),  # a remote ccache
                           Need("qemu-user", "qemu-x86_64"))


def _present(need: Need) -> bool:
    if need.probe.startswith("/"):
        return Path(need.probe).exists()
    return shutil.which(need.probe) is not None


def missing(needs: tuple[Need, ...]) -> list[str]:
    """Debian packages whose probe is absent, in declaration order."""
    return [n.package for n in needs if not _present(n)]


def ensure(needs: tuple[Need, ...], runner: Runner = default_runner) -> list[str]:
    """Install what is missing with apt-get (as root, or through sudo); return what was installed."""
    todo = missing(needs)
    if not todo:
        return []
    command = ["apt-get", "install", "-y", "--no-install-recommends", *todo]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise DepsError(
                f"missing host packages: {', '.join(todo)}",
                hint=f"run as root: apt-get update && {' '.join(command)}",
            )
        command = ["sudo", "-n", *command]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        runner.run(command, env=env, timeout=1800)
    except Exception:
        update = ["apt-get", "update"] if command[0] == "apt-get" else ["sudo", "-n", "apt-get", "update"]
        runner.run(update, env=env, timeout=600)
        runner.run(command, env=env, timeout=1800)
    still = missing(needs)
    if still:
        raise DepsError(
            f"installed {', '.join(todo)} but still missing: {', '.join(still)}",
            hint="check the apt sources of this machine",
        )
    return todo
