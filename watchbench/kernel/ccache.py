"""ccache for kernel builds: the local cache first, a team's remote cache second.

The remote level is ccache's own ``remote_storage`` (ccache 4.7: ``redis://``, ``http://``
and ``file://`` entries, space-separated, each with optional ``|attribute=value`` parts),
so watchbench runs no cache service of its own. What a build got from each level is read
from ccache's own counters (``ccache --print-stats``) before and after the build.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from watchbench.errors import ConfigError
from watchbench.host.runner import Runner, default_runner

SCHEMES = {"redis": 6379, "http": 80, "file": 0}  # what ccache 4.7 speaks, default ports
SETTING = "watchbench.ccache_remote"


@dataclass(frozen=True)
class Remote:
    """One ``remote_storage`` entry."""

    entry: str  # as given, attributes included: what ccache gets
    scheme: str
    host: str
    port: int
    path: str

    @property
    def shown(self) -> str:
        """The entry without credentials or attributes, for logs and provenance."""
        where = self.path if self.scheme == "file" else f"{self.host}:{self.port}{self.path}"
        return f"{self.scheme}://{where}"


def parse_remote(text: str) -> tuple[Remote, ...]:
    """The entries of a ``watchbench.ccache_remote`` setting; a bad one is a ConfigError
    that names it, raised before any make runs."""
    remotes = []
    for entry in text.split():
        url = entry.split("|", 1)[0]
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{SETTING}: {entry!r} is not a URL ({exc})",
                              hint="e.g. redis://cache.example.org:6379") from exc
        if parts.scheme not in SCHEMES:
            raise ConfigError(
                f"{SETTING}: {entry!r}: ccache has no {parts.scheme or 'empty'!r} remote storage",
                hint="ccache 4.7 speaks " + ", ".join(f"{s}://" for s in SCHEMES))
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise ConfigError(f"{SETTING}: {entry!r}: a file:// remote needs an absolute path",
                                  hint="e.g. file:///srv/ccache")
        elif not parts.hostname:
            raise ConfigError(f"{SETTING}: {entry!r} names no host",
                              hint=f"e.g. {parts.scheme}://cache.example.org")
        remotes.append(Remote(entry, parts.scheme, parts.hostname or "",
                              port or SCHEMES[parts.scheme], parts.path))
    return tuple(remotes)


def allowed(remote: Remote, *, sandboxed: bool, trusted: bool) -> bool:
    """Whether a build may use ``remote``: a sandboxed untrusted build has no network, so
    it gets file:// remotes only; a hostile Makefile could otherwise talk to the server
    itself, past ccache's read-only attribute (docs/security.md)."""
    return remote.scheme == "file" or trusted or not sandboxed


def read_only(text: str) -> str:
    """The remote entries as an untrusted build gets them: each with ccache's
    ``read-only=true`` attribute (ccache 4.7, "Attributes for all backends"), any
    ``read-only`` the setting gave dropped first. It binds ccache only, so a sandboxed
    untrusted build gets no network remote at all (kernel.build, docs/security.md)."""
    entries = []
    for entry in text.split():
        url, *attributes = entry.split("|")
        kept = [a for a in attributes if a.split("=", 1)[0] != "read-only"]
        entries.append("|".join([url, *kept, "read-only=true"]))
    return " ".join(entries)


def unreachable(remote: Remote, timeout: float = 2.0) -> str | None:
    """Why ``remote`` cannot be used now (None: it answers a connection)."""
    if remote.scheme == "file":
        path = Path(remote.path)
        return None if path.is_dir() and os.access(path, os.W_OK) else f"{path} is not a writable directory"
    try:
        with socket.create_connection((remote.host, remote.port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


# The counters of ``ccache --print-stats`` (tab-separated) that say where results came from.
COUNTERS = ("local_storage_hit", "local_storage_miss", "remote_storage_hit",
            "remote_storage_miss", "remote_storage_error", "remote_storage_timeout",
            "direct_cache_hit", "preprocessed_cache_hit", "cache_miss")


@dataclass(frozen=True)
class Stats:
    """ccache's counters; ``after - before`` is what one build did. The counters are the
    cache directory's, so a build that runs beside another one counts both."""

    counts: dict[str, int]

    def __sub__(self, other: Stats) -> Stats:
        return Stats({k: self.counts.get(k, 0) - other.counts.get(k, 0) for k in COUNTERS})

    def get(self, key: str) -> int:
        return self.counts.get(key, 0)

    @staticmethod
    def _rate(hits: int, misses: int) -> float | None:
        return hits / (hits + misses) if hits + misses else None

    @property
    def cacheable(self) -> int:
        """Compiles ccache could cache: found (direct or preprocessed) or run (a miss). In
        depend mode a cold miss is never looked up, so storage misses undercount them."""
        return (self.get("direct_cache_hit") + self.get("preprocessed_cache_hit")
                + self.get("cache_miss"))

    @property
    def local_rate(self) -> float | None:
        """Share of the cacheable compiles the local cache answered."""
        return self.get("local_storage_hit") / self.cacheable if self.cacheable else None

    @property
    def remote_rate(self) -> float | None:
        """Remote hits over remote lookups (made only for local misses)."""
        return self._rate(self.get("remote_storage_hit"), self.get("remote_storage_miss"))

    def describe(self) -> str:
        if not self.cacheable:
            return "ccache: no cacheable compiles"
        text = (f"ccache: {self.cacheable:,} compiles, {self.local_rate:.0%} from the local "
                "cache")
        looked = self.get("remote_storage_hit") + self.get("remote_storage_miss")
        if looked:
            text += (f", {self.get('remote_storage_hit') / self.cacheable:.0%} from the remote "
                     f"(hit {self.remote_rate:.0%} of {looked:,} lookups)")
        errors = self.get("remote_storage_error") + self.get("remote_storage_timeout")
        if errors:
            text += f", {errors:,} remote errors or timeouts"
        return text

    def provenance(self, remotes: tuple[Remote, ...] = ()) -> dict[str, object]:
        """What the build's ``kernel.json`` keeps of it."""
        return {**{k: self.get(k) for k in COUNTERS}, "local_rate": self.local_rate,
                "remote_rate": self.remote_rate, "remote": [r.shown for r in remotes]}


def parse_stats(text: str) -> Stats:
    counts = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key in COUNTERS and value.strip().isdigit():
            counts[key] = int(value)
    return Stats(counts)


def read_stats(ccache_dir: Path, runner: Runner = default_runner) -> Stats:
    """The cache directory's counters now (empty when ccache cannot say)."""
    done = runner.run(["ccache", "--print-stats"], env={"CCACHE_DIR": str(ccache_dir)},
                      check=False, timeout=60)
    return parse_stats(done.stdout) if done.returncode == 0 else Stats({})
