"""How long-running work reports progress without printing: the CLI plugs in a rich observer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Observer:
    """Silent by default. ``event`` marks milestones; ``progress`` wraps a counted loop."""

    def event(self, kind: str, message: str, **fields: Any) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        yield lambda advance=1, **info: None
