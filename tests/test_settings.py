"""Scratch settings: a cache of its own that shares only what it is told to."""

from watchbench.settings import Settings


def test_scratch_links_shared_dirs_and_keeps_the_rest_apart(tmp_path):
    real = Settings()
    real.cache_dir = tmp_path / "real"
    scratch = real.scratch(tmp_path / "scratch", shared=("downloads", "ccache"))
    assert scratch.cache_dir == tmp_path / "scratch" and scratch.runs_dir == tmp_path / "scratch" / "runs"
    assert (scratch.cache_dir / "ccache").resolve() == real.cache_dir / "ccache"
    assert not (scratch.cache_dir / "trees").exists()
    assert real.cache_dir == tmp_path / "real"  # the original is not changed
    assert real.scratch(tmp_path / "scratch").cache_dir == scratch.cache_dir  # links are reused
