"""Shared fixtures. Integration tests use a cache of their own (so a developer's active tree
is never touched) that shares the download and ccache directories with the real one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watchbench.settings import Settings

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    real = Settings()
    cache = Path(os.environ.get("WATCHBENCH_TEST_CACHE", str(real.cache_dir) + "-tests"))
    return real.scratch(cache, shared=("downloads", "ccache"))


@pytest.fixture(scope="session")
def debian_tree(test_settings):
    """The real Debian 6.12 tree (downloaded and extracted once; cached across runs)."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.patching import reset
    from watchbench.kernel.trees import fetch_debian

    tree = fetch_debian(test_settings, progress=Silent())
    return reset(tree, force=True)


@pytest.fixture
def clean_tree(debian_tree):
    """The Debian tree reset to its bare base before and after the test."""
    from watchbench.kernel.patching import reset

    reset(debian_tree, force=True)
    yield debian_tree
    reset(debian_tree, force=True)


@pytest.fixture(scope="session")
def default_kernel(debian_tree, test_settings):
    """The default configuration (no series) built once per session."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.variant import Composer

    return Composer(test_settings, debian_tree, progress=Silent()).kernel(None)


@pytest.fixture(scope="session")
def guest(default_kernel, test_settings):
    from watchbench.guest.initramfs import base_initramfs
    from watchbench.vm.session import Guest

    return Guest(default_kernel.bzimage, base_initramfs(test_settings), "tcg", test_settings.cache_dir)


@pytest.fixture(scope="session")
def bench_kernel(debian_tree, test_settings, default_kernel):
    """Our in-kernel benchmark series applied, its fragment added, built once per session."""
    from watchbench.host.progress import Silent
    from watchbench.kernel.variant import Composer, stack

    composer = Composer(test_settings, debian_tree, progress=Silent())
    try:
        return composer.kernel(stack(test_settings))
    finally:
        composer.restore()
