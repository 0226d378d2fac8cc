"""A search's deadline, enforced inside a step."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from modelpress.errors import StepError


@contextlib.contextmanager
def cut_at(deadline: float | None, name: str) -> Iterator[None]:
    """A step's work stopped at a search's deadline (``time.monotonic()``): a timer signal
    raises StepError at the next Python instruction, so even an export or a calibration that
    would run on is cut off, and the node is recorded failed (run again by --resume). Only in
    the main thread, where signals arrive; elsewhere training still stops per epoch."""
    if deadline is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise StepError(
            f"{name}: stopped: the search's time budget ran out during this step "
            "(--resume runs it again with more --budget)"
        )

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
