"""The instruction-count TCG plugin (``wb-insns.c``): its header, its build, its file.

QEMU loads a plugin after checking one integer, ``qemu_plugin_version``; it does not
check the declarations the plugin was compiled against. So the plugin is built against the
header of the very QEMU that loads it: a ``qemu-plugin.h`` the system has (other
distributions ship one), else the one in Debian's ``qemu`` source package at the
installed binary's source version (fetched once, with apt kept private: host.debsrc).
Declaring the few functions ourselves would save that 24 MB download, but a drift between
those declarations and the binary would load silently and count wrong.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

from watchbench.errors import BuildError, CommandError
from watchbench.host.debsrc import installed_member
from watchbench.host.files import write_atomically
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import compiler_version
from watchbench.settings import Settings
from watchbench.vm.qemu import ARCHS

SOURCE = "wb-insns.c"
CFLAGS = ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"]
SYSTEM_HEADERS = (Path("/usr/include/qemu/qemu-plugin.h"), Path("/usr/include/qemu-plugin.h"))
HEADER_IN_SOURCE = "include/qemu/qemu-plugin.h"
# The Debian binary package of each architecture's QEMU, whose source version pins the header.
QEMU_PACKAGES = {"qemu-system-x86_64": "qemu-system-x86"}
OUTPUT = "insns.txt"  # what the plugin writes into the run's raw/ directory


def plugin_source() -> bytes:
    return (resources.files("watchbench") / "vm" / SOURCE).read_bytes()


def header(settings: Settings, runner: Runner = default_runner, arch: str = "x86_64") -> Path:
    """The qemu-plugin.h matching the QEMU that will load the plugin."""
    if settings.qemu.plugin_header:
        path = Path(settings.qemu.plugin_header).expanduser()
        if not path.is_file():
            raise BuildError(f"qemu.plugin_header is {path}, which is not a file",
                             hint="point it at QEMU's qemu-plugin.h, or unset it")
        return path
    for path in SYSTEM_HEADERS:
        if path.is_file():
            return path
    return installed_member(settings.cache_dir, QEMU_PACKAGES[ARCHS[arch].binary],
                            HEADER_IN_SOURCE, "qemu-plugin-h", runner)[0]


def build(settings: Settings, runner: Runner = default_runner) -> Path:
    """``wb-insns.so``, compiled once per source, header, compiler and flags."""
    head = header(settings, runner)
    source = plugin_source()
    key = hashlib.sha256(b"\0".join([source, head.read_bytes(), " ".join(CFLAGS).encode(),
                                     compiler_version(runner).encode()])).hexdigest()[:16]
    out = settings.cache_dir / "plugins" / key
    lib = out / "wb-insns.so"
    if lib.exists():
        return lib
    out.mkdir(parents=True, exist_ok=True)
    src = write_atomically(out / SOURCE, source)
    partial = out / f".wb-insns.so.tmp-{os.getpid()}"
    try:
        runner.run(["gcc", *CFLAGS, f"-I{head.parent}", "-o", str(partial), str(src)], timeout=120)
    except CommandError as exc:
        raise BuildError(f"the instruction-count plugin does not compile against {head}:\n"
                         f"{exc.output.strip()}",
                         hint="set qemu.plugin_header to the qemu-plugin.h of your QEMU") from exc
    partial.rename(lib)
    return lib
