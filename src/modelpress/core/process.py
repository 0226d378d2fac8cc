"""Process-wide state a measurement or a build must set — torch's thread count, the torch RNG,
``sys.path`` — set for a block and put back here, in one place, so no caller finds it changed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count is process-wide: set it for a block, then put it back."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """The torch CPU RNG seeded for a block (reproducible weights, shuffles), then restored:
    the caller's random stream continues as if the block had not run."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def import_path(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for a block (a user's model file importing its
    neighbours); removed after, even when the imported code changed ``sys.path`` itself."""
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with suppress(ValueError):
            sys.path.remove(entry)
