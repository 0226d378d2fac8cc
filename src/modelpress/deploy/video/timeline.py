"""Scores in frame order → frame and window records and the video's decision, and the
plumbing between threads: the bounded ``Buffer`` from the decode thread to the scorers, the
``Reservoir`` of latencies (streaming percentiles in flat memory)."""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from modelpress.deploy.video.frames import Frame


class Buffer:
    """Bounded FIFO between the decode thread and the scorers. Full: ``put`` waits (a file),
    or drops the oldest frame (``drop_oldest``: live input), handing its scene cut on."""

    def __init__(self, size: int, drop_oldest: bool) -> None:
        self.items: deque[Frame] = deque()
        self.size, self.drop_oldest = size, drop_oldest
        self.cond = threading.Condition()
        self.finished = self.closed = False
        self.dropped = 0

    def put(self, item: Frame) -> bool:
        """False when the consumer has gone (stop decoding)."""
        with self.cond:
            while len(self.items) >= self.size and not self.closed:
                if self.drop_oldest:
                    old = self.items.popleft()
                    self.dropped += 1
                    if old.cut:
                        (self.items[0] if self.items else item).cut = True
                else:
                    self.cond.wait()
            if self.closed:
                return False
            self.items.append(item)
            self.cond.notify_all()
            return True

    def take(self, n: int, timeout: float | None) -> list[Frame] | None:
        """Up to ``n`` frames (waiting up to ``timeout`` for the first); None once decoding
        has finished and nothing is left."""
        with self.cond:
            if not self.items and not self.finished:
                self.cond.wait_for(lambda: self.items or self.finished, timeout)
            if not self.items:
                return None if self.finished else []
            out = [self.items.popleft() for _ in range(min(n, len(self.items)))]
            self.cond.notify_all()
            return out

    def finish(self) -> None:
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.items.clear()
            self.cond.notify_all()


class Reservoir:
    """A uniform sample of at most ``capacity`` values (exact below it): flat memory."""

    def __init__(self, capacity: int = 4096, seed: int = 0) -> None:
        self.values: list[float] = []
        self.capacity, self.seen = capacity, 0
        self.rng = random.Random(seed)

    def add(self, v: float) -> None:
        self.seen += 1
        if len(self.values) < self.capacity:
            self.values.append(v)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.capacity:
                self.values[j] = v

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.values, q)) if self.values else None


class Timeline:
    """Scores in frame order → frame records (EMA of log-odds, reset at scene cuts) and
    window records; the video's decision from the windows."""

    def __init__(self, alpha: float, threshold: float) -> None:
        self.alpha, self.threshold = alpha, threshold
        self.z: float | None = None  # smoothed log-odds
        self.p_smooth: float | None = None
        self.processed = 0
        self.latency = Reservoir()
        self.window: int | None = None  # the window being filled
        self.n = 0
        self.sum_p = self.sum_p2 = 0.0
        self.first: tuple[int, float] | None = None
        self.last: tuple[int, float] | None = None
        self.windows = self.windows_positive = 0

    def frames(self, items: list[Frame], p: np.ndarray, done_at: float) -> Iterator[dict[str, Any]]:
        for item, pi in zip(items, p.tolist(), strict=True):
            if self.window is not None and item.window != self.window:
                yield from self.close_window(complete=True)  # a later window began: complete
            self.window = item.window
            z = _logit(pi)
            self.z = z if self.z is None or item.cut else self.alpha * z + (1 - self.alpha) * self.z
            self.p_smooth = _sigmoid(self.z)
            self.processed += 1
            self.latency.add(done_at - item.decoded_at)
            self.n += 1
            self.sum_p += pi
            self.sum_p2 += pi * pi
            self.first = self.first or (item.index, item.time)
            self.last = (item.index, item.time)
            yield {
                "type": "frame",
                "index": item.index,
                "pts": item.pts,
                "time": round(item.time, 6),
                "p": pi,
                "p_smooth": self.p_smooth,
                "scene_cut": bool(item.cut),
            }

    def close_window(self, complete: bool) -> Iterator[dict[str, Any]]:
        """The window's record (when all its sampled frames were seen and some scored)."""
        if complete and self.n and self.first and self.last and self.p_smooth is not None:
            mean = self.sum_p / self.n
            std = math.sqrt(max(0.0, self.sum_p2 / self.n - mean * mean))
            positive = self.p_smooth >= self.threshold
            self.windows += 1
            self.windows_positive += int(positive)
            yield {
                "type": "window",
                "window": self.window,
                "start": round(self.first[1], 6),
                "end": round(self.last[1], 6),
                "first_frame": self.first[0],
                "last_frame": self.last[0],
                "frames": self.n,
                "p_mean": mean,
                "p_smooth": self.p_smooth,
                "consistency": min(1.0, max(0.0, 1.0 - std)),
                "decision": "positive" if positive else "negative",
            }
        self.n, self.sum_p, self.sum_p2, self.first, self.last = 0, 0.0, 0.0, None, None

    def decision(self, window: int) -> tuple[str | None, str]:
        t = self.threshold
        if self.windows:
            share = self.windows_positive / self.windows
            return (
                "positive" if share >= 0.5 else "negative",
                f"positive when at least half of the complete windows ({window} sampled frames "
                f"each) are positive (smoothed p ≥ {t:g} at the window's end): "
                f"{self.windows_positive} of {self.windows}",
            )
        if self.p_smooth is not None:
            return (
                "positive" if self.p_smooth >= t else "negative",
                f"no complete window of {window} sampled frames: the last frame's smoothed "
                f"p {self.p_smooth:.3f} against {t:g}",
            )
        return None, "no frame was scored"


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def to_ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds
