"""The kernel side every flow takes as an argument: one protocol for ``ci``, ``check``
and ``bisect``, so that ``kernel.variant.Composer`` and the fake in ``tests/fakes.py``
fill one seam under one name."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from watchbench.kernel.build import Kernel
from watchbench.kernel.series import Series
from watchbench.kernel.trees import Tree


class KernelSource(Protocol):
    """What a flow needs of the kernel side (``kernel.variant.Composer``; a fake in tests)."""

    tree: Tree  # where the kernels are composed (``check`` builds its clients there)

    def kernel(self, series: Series | None, fragments: list[str] | None = None) -> Kernel:
        """The base plus ``series`` (None: the bare base), with ``fragments`` if given."""
        ...

    def at_commit(self, commit: str) -> Kernel:
        """The tree at ``commit`` with our bench series on top (``bisect``)."""
        ...

    def restore(self) -> object: ...  # the tree as it was before the first kernel

    def hold(self) -> AbstractContextManager[object]: ...  # the tree's lock, reentrant
