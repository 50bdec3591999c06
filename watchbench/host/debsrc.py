"""Debian source packages, pinned to the version installed here, fetched without touching
the machine's apt configuration.

apt-get runs with a private ``sources.list`` (the machine's own ``deb`` mirrors turned
into ``deb-src`` entries), a private state and cache directory, and no lock on the
system's: the user's apt stays exactly as it was. The files land in the download cache,
one directory per package and version, written once and then only read.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from watchbench.errors import CommandError, WatchbenchError
from watchbench.host.files import write_atomically
from watchbench.host.lock import Lock
from watchbench.host.runner import Runner, alive, default_runner

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


class SourceError(WatchbenchError):
    """A Debian source package could not be found or fetched."""


def installed_source(binary_package: str, runner: Runner = default_runner) -> tuple[str, str]:
    """(source package, source version) of an installed binary package: the pin."""
    out = runner.run(["dpkg-query", "-W", "-f", "${source:Package} ${source:Version}",
                      binary_package], check=False)
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        raise SourceError(f"{binary_package} is not installed, so there is no version to pin "
                          "its source to", hint="run ./wb deps")
    return parts[0], parts[1]


def deb_src_lines(sources: tuple[Path, ...] = APT_SOURCES) -> list[str]:
    """The machine's ``deb`` entries (one-line and deb822 formats) as ``deb-src`` lines."""
    files: list[Path] = []
    for path in sources:
        files += sorted(path.glob("*.list")) + sorted(path.glob("*.sources")) if path.is_dir() else [path]
    lines: list[str] = []
    for path in (p for p in files if p.is_file()):
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            lines += _deb822(text)
        else:
            lines += [re.sub(r"^deb\s", "deb-src ", ln.strip()) for ln in text.splitlines()
                      if re.match(r"^deb\s", ln.strip())]
    return list(dict.fromkeys(lines))


def _deb822(text: str) -> list[str]:
    lines = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        opts = f"[signed-by={fields['signed-by']}] " if fields.get("signed-by", "").startswith("/") else ""
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                lines.append(f"deb-src {opts}{uri} {suite} {fields.get('components', 'main')}")
    return lines


def apt_options(state: Path) -> list[str]:
    """apt-get options that keep every file it reads or writes under ``state``."""
    return ["-o", f"Dir::Etc::SourceList={state / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State={state / 'state'}", "-o", f"Dir::Cache={state / 'cache'}",
            "-o", "Debug::NoLocking=1", "-o", "APT::Get::Only-Source=1"]


def fetch_source(cache: Path, package: str, version: str, runner: Runner = default_runner,
                 sources: tuple[Path, ...] = APT_SOURCES) -> Path:
    """The directory holding ``package``'s .dsc and tarballs at ``version`` (fetched once)."""
    root = cache / "downloads" / "debsrc"
    dest = root / f"{package}_{version.replace(':', '%3a')}"
    if (dest / ".complete").exists():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    with Lock(root / f"{package}.lock", f"downloading the {package} source package"):
        if (dest / ".complete").exists():
            return dest
        lines = deb_src_lines(sources)
        if not lines:
            raise SourceError("this machine has no Debian apt sources to derive deb-src "
                              "entries from", log=sources[0])
        state = root / "apt"
        for sub in ("state/lists/partial", "cache/archives/partial"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        write_atomically(state / "sources.list", "\n".join(lines) + "\n")
        for stale in root.glob(".partial-*"):
            if not alive(stale.name.rsplit("-", 1)[1]):
                shutil.rmtree(stale, ignore_errors=True)
        partial = root / f".partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        opts = apt_options(state)
        try:
            runner.run(["apt-get", *opts, "update"], timeout=900)
            runner.run(["apt-get", *opts, "source", "--download-only", f"{package}={version}"],
                       cwd=partial, timeout=1800)
        except CommandError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise SourceError(f"could not fetch the Debian source package {package}={version}:\n"
                              f"{exc.output.strip()[-1500:]}",
                              hint=f"check the deb-src entries apt was given: "
                                   f"{state / 'sources.list'}") from exc
        (partial / ".complete").write_text(version + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    return dest


def extract_member(source_dir: Path, member: str, into: Path,
                   runner: Runner = default_runner) -> Path:
    """One file or directory of a source package's orig tarball (``member``: its path
    under the tarball's one top directory), copied to ``into`` once (renamed into place
    whole, so a half-extracted one is never taken for done)."""
    if into.exists():
        return into
    tarballs = sorted(source_dir.glob("*.orig.tar.*"))
    if not tarballs:
        raise SourceError(f"{source_dir} holds no orig tarball", log=source_dir)
    listing = runner.run(["tar", "-t", "-f", str(tarballs[0])], timeout=600).stdout.splitlines()
    depth = member.count("/") + 1  # under the tarball's one top directory
    names = [n for n in (line.rstrip("/") for line in listing)
             if n.endswith("/" + member) and n.count("/") == depth]
    if not names:
        raise SourceError(f"{tarballs[0].name} has no {member}", log=tarballs[0])
    into.parent.mkdir(parents=True, exist_ok=True)
    scratch = into.parent / f".extract-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        runner.run(["tar", "-x", "-f", str(tarballs[0]), "-C", str(scratch), names[0]], timeout=600)
        os.replace(scratch / names[0], into)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return into


def installed_member(cache: Path, binary_package: str, member: str, name: str,
                     runner: Runner = default_runner) -> tuple[Path, str]:
    """One file or directory of the source of an installed binary package, at its installed
    version (the pin), kept under downloads/``name``/<version>/: (its path, the version).
    Once extracted it is used as it is, even when the source package itself was pruned."""
    package, version = installed_source(binary_package, runner)
    into = cache / "downloads" / name / version.replace(":", "%3a") / Path(member).name
    if into.exists():
        return into, version
    return extract_member(fetch_source(cache, package, version, runner), member, into,
                          runner), version
