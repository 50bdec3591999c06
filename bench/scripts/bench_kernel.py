"""The bench kernel of the test cache, for the scripts that boot it many times.

The test cache's Debian tree, reset to its base, with our bench series built on it (a
cached kernel when it was built before), and a runs directory of the script's own.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from watchbench.host.progress import Progress
from watchbench.kernel import patching
from watchbench.kernel.build import Kernel
from watchbench.kernel.trees import fetch_debian
from watchbench.kernel.variant import Composer, stack
from watchbench.settings import Settings

TEST_CACHE = str(Settings().cache_dir) + "-tests"


def bench_kernel(cache: str, prefix: str, progress: Progress) -> tuple[Settings, Kernel]:
    """Settings on ``cache`` with a fresh runs directory, and the built bench kernel."""
    runs = Path(tempfile.mkdtemp(prefix=prefix))
    settings = replace(Settings().scratch(Path(cache), shared=("downloads", "ccache")),
                       runs_dir=runs)
    tree = patching.reset(fetch_debian(settings, progress=progress), force=True)
    composer = Composer(settings, tree, progress=progress)
    try:
        return settings, composer.kernel(stack(settings))
    finally:
        composer.restore()
