"""A shared build cache on ccache's remote storage, with a real redis-server (Debian's) on
127.0.0.1: a build with an empty local cache gets its objects from a remote that another
build filled; a remote that does not answer is a warning and a local build; a bad setting
fails before make."""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import Steps
from watchbench.errors import ConfigError
from watchbench.host.progress import Silent
from watchbench.host.runner import default_runner
from watchbench.kernel import ccache
from watchbench.kernel.build import build
from watchbench.kernel.kmake import KernelMake

pytestmark = pytest.mark.kernel



# What the two builds make: the kernel/ directory's objects (the notification queue's
# among them), not the whole bzImage: the same ccache traffic per object, a fifth of the
# compiles (the whole image builds from the local cache in every other kernel test).
TARGET = "kernel/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis(tmp_path):
    """A real redis-server on a free port, no persistence; stopped at the end."""
    port = _free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp_path)]
    with default_runner.spawn(argv, log=tmp_path / "redis.log") as proc:
        ready = False
        for line in proc.lines():
            if line and "Ready to accept connections" in line:
                ready = True
                break
            assert time.monotonic() - proc.started_at < 30, "redis-server did not start"
        assert ready, (tmp_path / "redis.log").read_text()
        yield f"redis://127.0.0.1:{port}"


@pytest.fixture
def configured(bench_tree):
    """The Debian tree with the bench series, configured as the bench kernel was."""
    return bench_tree


def _make(tree, name: str, ccache_dir: Path, settings, remote: str, reshare: bool) -> KernelMake:
    """A make of the configured tree into a build directory of its own beside the usual one
    (the same depth, so ccache's base-dir-relative paths, and so its keys, are the same)."""
    out = tree.root / "build" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copyfile(tree.root / "configs" / f"{tree.config_hash}.config", out / ".config")
    return KernelMake(tree.src, out, jobs=settings.job_count, ccache_dir=ccache_dir,
                      ccache_basedir=settings.cache_dir, ccache_remote=remote,
                      ccache_reshare=reshare, sandboxed=settings.sandbox)  # as the pipeline


def test_an_empty_local_cache_builds_from_the_remote(configured, test_settings, redis, tmp_path):
    tree, shared = configured, test_settings.cache_dir / "ccache"
    timed = {}
    try:
        for name, cache_dir, reshare in (("fill", shared, True),
                                         ("from-remote", tmp_path / "empty-ccache", False)):
            make = _make(tree, f"ccache-{name}", cache_dir, test_settings, redis, reshare)
            before = ccache.read_stats(cache_dir)
            start = time.monotonic()
            make.build(TARGET, tmp_path / f"{name}.log")
            timed[name] = (time.monotonic() - start, ccache.read_stats(cache_dir) - before)
            assert (make.out / "kernel" / "watch_queue.o").is_file()
    finally:
        for name in ("fill", "from-remote"):
            shutil.rmtree(tree.root / "build" / f"ccache-{name}", ignore_errors=True)
    seconds, stats = timed["from-remote"]
    print(f"\nfill (warm local, reshare): {timed['fill'][0]:.0f} s, {timed['fill'][1].describe()}"
          f"\nempty local + remote: {seconds:.0f} s, {stats.describe()}")
    assert stats.get("remote_storage_hit") > 100
    assert stats.remote_rate is not None and stats.remote_rate >= 0.9, stats.describe()


def test_an_unreachable_remote_is_a_warning_and_a_local_build(configured, test_settings):
    settings = replace(test_settings, ccache_remote=f"redis://127.0.0.1:{_free_port()}",
                       ccache_trusted=True)  # an untrusted build leaves a network remote out
    steps = Steps()
    kernel = build(settings, configured, progress=steps, force=True)
    assert kernel.bzimage.is_file()
    warning = next(line for line in steps.lines if line.startswith("warning: remote ccache"))
    assert "unreachable" in warning and "local cache only" in warning
    assert any(line.startswith("ccache: ") and "from the local cache" in line
               for line in steps.lines), steps.lines
    assert kernel.ccache["remote"] == [] and kernel.ccache["local_rate"] is not None


def test_a_bad_remote_setting_fails_before_make(configured, test_settings, tmp_path):
    settings = replace(test_settings, ccache_remote="memcached://cache:11211")
    logs = set((test_settings.cache_dir / "logs").glob("build-*"))
    with pytest.raises(ConfigError, match="no 'memcached' remote storage"):
        build(settings, configured, progress=Silent(), force=True)
    assert set((test_settings.cache_dir / "logs").glob("build-*")) == logs  # no make ran
