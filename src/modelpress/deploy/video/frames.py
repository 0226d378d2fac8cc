"""Which decoded frames a video scores, and what is made of each: sampling by timestamp
(``Sampling``, ``Sampler``), the quality filter (``Quality``; sharpness and brightness of the
grey frame), the model's input, and the ``Preparer`` that puts sampled frames in the buffer."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.errors import ModelpressError

if TYPE_CHECKING:
    from modelpress.deploy.video.decode import Decoded
    from modelpress.deploy.video.processor import VideoProcessor
    from modelpress.deploy.video.timeline import Buffer

ANALYSIS_SIDE = 512  # larger frames are scaled down (by swscale) before anything looks at them
DENSE_AFTER_CUT_S = 0.5  # adaptive sampling: every frame for this long after a scene cut
ADAPTIVE_BASE_FPS = 5.0
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class VideoError(ModelpressError):
    """A video that cannot be read, or settings that cannot process one."""


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Sampling:
    """Which decoded frames are scored: ``every:N`` (every Nth), ``fps:R`` (R a second by
    timestamp) or ``adaptive[:R]`` (like fps:R, and every frame for 0.5 s after a scene
    cut)."""

    kind: str
    every: int = 1
    rate: float = ADAPTIVE_BASE_FPS

    @classmethod
    def parse(cls, text: str) -> Sampling:
        kind, _, arg = text.strip().partition(":")
        try:
            if kind == "every":
                n = int(arg or 1)
                if n >= 1:
                    return cls("every", every=n)
            elif kind in ("fps", "adaptive"):
                rate = float(arg) if arg else ADAPTIVE_BASE_FPS
                if (kind == "adaptive" or arg) and math.isfinite(rate) and rate > 0:
                    return cls(kind, rate=rate)
        except ValueError:
            pass
        raise VideoError(
            f"--sample '{text}': use every:N (N ≥ 1), fps:R (R > 0) or adaptive[:R], e.g. fps:5"
        )

    def describe(self) -> str:
        if self.kind == "every":
            return f"every:{self.every}"
        return f"{self.kind}:{self.rate:g}"


@dataclass(frozen=True)
class Quality:
    """Frames outside these bounds are not scored (unless a whole window is: its sharpest
    ``max(1, window // 4)`` are kept). Sharpness: variance of the 3×3 Laplacian of the grey
    frame in [0, 1]; brightness: its mean."""

    min_sharpness: float = 1e-4
    min_brightness: float = 0.03
    max_brightness: float = 0.97

    @classmethod
    def from_dict(cls, values: dict[str, float] | None) -> Quality:
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise VideoError(
                f"quality: unknown key {sorted(unknown)[0]}; use min_sharpness, "
                "min_brightness, max_brightness"
            )
        q = cls(**{k: float(v) for k, v in values.items()})
        if q.min_brightness > q.max_brightness or q.min_sharpness < 0:
            raise VideoError(
                "quality: min_brightness must not exceed max_brightness, min_sharpness ≥ 0"
            )
        return q

    def passes(self, sharpness: float, brightness: float) -> bool:
        return (
            sharpness >= self.min_sharpness
            and self.min_brightness <= brightness <= self.max_brightness
        )


# ---------------------------------------------------------------------- frame analysis


def analysis_rgb(frame: Any, reformatter: Any = None) -> np.ndarray:
    """(h, w, 3) uint8 RGB of a decoded frame; frames over ANALYSIS_SIDE on their long side
    are scaled down while converting (an 8K frame never exists as a full RGB array).
    ``reformatter``: an ``av.video.reformatter.VideoReformatter`` kept for a video's frames —
    ``frame.to_ndarray(format=...)`` sets up a new swscale context for every frame, 0.1–0.3 ms
    on a 64×64 frame, more than everything else the frame goes through."""
    if reformatter is None:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
    w, h = frame.width, frame.height
    size = {}
    if max(w, h) > ANALYSIS_SIDE:
        scale = ANALYSIS_SIDE / max(w, h)
        size = {"width": max(1, round(w * scale)), "height": max(1, round(h * scale))}
    return reformatter.reformat(frame, format="rgb24", **size, **sws_threads()).to_ndarray()


@functools.cache
def sws_threads() -> dict[str, int]:
    """One swscale thread: PyAV 17 made it threaded (by default as many threads as CPUs), and
    here the decode thread runs beside the scoring threads that fill the cores already; at
    ≤ ANALYSIS_SIDE pixels a side the hand-offs cost more than they save (64×64: 4 µs a frame
    on one thread, 11 µs on the pool, unloaded; far more when the cores are busy)."""
    import av

    return {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}


def grey(rgb: np.ndarray) -> np.ndarray:
    """(h, w) float32 luma in [0, 1]."""
    return (rgb.astype(np.float32) @ LUMA) / 255.0


def sharpness(g: np.ndarray) -> float:
    """Variance of the 3×3 Laplacian (edges padded, so any size works)."""
    p = np.pad(g, 1, mode="edge")
    lap = 4 * p[1:-1, 1:-1] - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]
    return float(lap.var())


def model_input(rgb: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(C, H, W) float32 in [0, 1]: resized (bilinear), grey when C == 1."""
    from PIL import Image

    c, h, w = shape
    img = Image.fromarray(rgb)
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0  # (H, W, 3)
    if c == 1:
        return (arr @ LUMA)[None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


@dataclass(slots=True)
class Frame:
    """A sampled frame on its way to the scorers."""

    index: int  # among decoded frames
    pts: int | None
    time: float  # seconds
    x: np.ndarray  # (C, H, W) the model's input
    cut: bool  # a scene cut at (or, for skipped frames, just before) this frame
    window: int  # sampled-frame number // window
    sharpness: float
    decoded_at: float  # clock() (evaluate/benchmark.py) when it was decoded


class Sampler:
    """fps:R takes the first frame at or after each tick of a 1/R s clock started at the first
    frame (R a second on average, whatever the video's rate: 10 of 25 fps, not every third);
    a gap in the timestamps restarts the clock at the frame after it."""

    def __init__(self, sampling: Sampling, slack: float) -> None:
        self.s, self.slack = sampling, slack
        self.due: float | None = None  # the next tick
        self.dense_until = -math.inf

    def take(self, t: float, index: int) -> bool:
        if self.s.kind == "every":
            return index % self.s.every == 0
        period = 1.0 / self.s.rate
        if self.due is None or t >= self.due - self.slack:
            self.due = (t if self.due is None else self.due) + period
            if self.due <= t:  # a gap: start the clock again here
                self.due = t + period
            return True
        return t < self.dense_until

    def cut(self, t: float) -> None:
        if self.s.kind == "adaptive":
            self.dense_until = t + DENSE_AFTER_CUT_S


class Preparer:
    """Sampled frames → quality, the model's input; into the buffer. A window's frames that
    fail the quality filter wait until the window ends: if none of it passed, its sharpest k
    are scored after all."""

    def __init__(self, proc: VideoProcessor, buffer: Buffer, counts: Decoded) -> None:
        self.proc, self.buffer, self.counts = proc, buffer, counts
        self.rejected: list[Frame] = []  # this window's failed frames (≤ window of them)
        self.passed = 0
        self.cut_pending = False  # a cut seen on a frame that was not scored
        self.keep = max(1, proc.window // 4)
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()  # one swscale context for the video's frames

    def add(self, frame: Any, index: int, t: float, cut: bool, decoded_at: float) -> bool:
        proc, counts = self.proc, self.counts
        number = counts.sampled
        counts.sampled += 1
        rgb = analysis_rgb(frame, self.reformatter)
        g = grey(rgb)
        sharp = sharpness(g)
        item = Frame(
            index,
            frame.pts,
            t,
            model_input(rgb, proc.input_shape),
            cut,
            number // proc.window,
            sharp,
            decoded_at,
        )
        alive = True
        if proc.quality.passes(sharp, float(g.mean())):
            self.passed += 1
            alive = self._put(item)
        else:
            self.cut_pending |= item.cut
            item.cut = False
            self.rejected.append(item)
        if (number + 1) % proc.window == 0:
            alive = self.flush() and alive
        return alive

    def _put(self, item: Frame) -> bool:
        item.cut |= self.cut_pending
        self.cut_pending = False
        return self.buffer.put(item)

    def flush(self) -> bool:
        """The window has ended: score its sharpest failed frames if nothing of it passed."""
        alive = True
        if self.passed == 0 and self.rejected:
            sharpest = sorted(self.rejected, key=lambda f: -f.sharpness)[: self.keep]
            kept = {id(f) for f in sharpest}
            for f in self.rejected:  # in frame order
                if id(f) in kept:
                    alive = self._put(f) and alive
            self.counts.skipped_quality += len(self.rejected) - len(kept)
        else:
            self.counts.skipped_quality += len(self.rejected)
        self.rejected, self.passed = [], 0
        return alive
