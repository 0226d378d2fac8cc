"""A video through a binary model: decoded packet by packet, sampled by timestamp, scored in
batches by worker threads, smoothed over time, decided by windows.

Threads: one decodes (PyAV), shows every frame to a PySceneDetect detector for scene cuts
(``deploy/scenecuts.py``) and prepares the sampled frames — sharpness and brightness for the
quality filter, the model's input — into a bounded buffer (a file waits when it is full;
``stream=True``, live input, drops the oldest frame instead and counts it). The caller's thread
takes batches from the buffer for ``workers`` scoring threads and turns the scores, in frame
order, into records: one per scored frame, one per complete window of ``window`` sampled
frames, a summary last. Nothing grows with the video's length: frames live in the buffer only,
records are yielded as they are made, and latencies go to a fixed-size reservoir.

Decoding never invents a frame. ``frames_corrupt`` counts the frames damaged data cost: a packet
that fails to decode (counted and skipped), the frames a demuxer jumps over when it resyncs past
damaged bytes (the byte positions of the packets, every stream, show the bytes skipped; the
video's timestamps, the frames), and the frames a file declares after damaged data the demuxer
cannot read past. ``stopped_at`` says where decoding ended early and why (``kind``):
``max_consecutive_errors`` failures in a row (``errors``), unreadable data mid-file with bytes
after it (``corrupt``), or a file that ends before the length it declares (``truncated``: only a
cut at the end). Only a file where nothing decodes is an error.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.deploy.scenecuts import SceneCuts, detect_size
from modelpress.errors import ModelpressError, first_line

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
    return reformatter.reformat(frame, format="rgb24", **size, **_sws_threads()).to_ndarray()


@functools.cache
def _sws_threads() -> dict[str, int]:
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


# ---------------------------------------------------------------------- plumbing


@dataclass(slots=True)
class _Frame:
    """A sampled frame on its way to the scorers."""

    index: int  # among decoded frames
    pts: int | None
    time: float  # seconds
    x: np.ndarray  # (C, H, W) the model's input
    cut: bool  # a scene cut at (or, for skipped frames, just before) this frame
    window: int  # sampled-frame number // window
    sharpness: float
    decoded_at: float  # perf_counter when it was decoded


class _Buffer:
    """Bounded FIFO between the decode thread and the scorers. Full: ``put`` waits (a file),
    or drops the oldest frame (``drop_oldest``: live input), handing its scene cut on."""

    def __init__(self, size: int, drop_oldest: bool) -> None:
        self.items: deque[_Frame] = deque()
        self.size, self.drop_oldest = size, drop_oldest
        self.cond = threading.Condition()
        self.finished = self.closed = False
        self.dropped = 0

    def put(self, item: _Frame) -> bool:
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

    def take(self, n: int, timeout: float | None) -> list[_Frame] | None:
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


class _Reservoir:
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


@dataclass
class _Decoded:
    """What the decode thread counted (read by the consumer once decoding has finished)."""

    decoded: int = 0
    sampled: int = 0
    skipped_quality: int = 0
    corrupt: int = 0
    scene_cuts: int = 0
    last_index: int | None = None
    last_time: float | None = None
    stopped_at: dict[str, Any] | None = None
    first_error: str | None = None
    error: BaseException | None = None


def _open(av: Any, path: str) -> Any:
    if "://" not in path:
        p = Path(path)
        if not p.exists():
            raise VideoError(f"{path}: no such video file")
        if p.is_dir():
            raise VideoError(f"{path}: is a folder; give a video file")
    try:
        container = av.open(path, mode="r")
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video PyAV can read ({first_line(e)})") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no stream"]
        container.close()
        raise VideoError(f"{path}: holds no video stream ({', '.join(kinds)} only)")
    return container


def check_video(path: str | Path, max_consecutive_errors: int = 25) -> None:
    """Raise VideoError unless ``path`` opens, holds a video stream and its first frame
    decodes: a cheap check of every input before any work starts."""
    from modelpress.extras import require

    av = require("av", "video", "modelpress video")
    failures, first = 0, None
    with _open(av, str(path)) as container:
        try:
            for packet in container.demux(container.streams.video[0]):
                try:
                    if packet.decode():
                        return
                except av.error.FFmpegError as e:  # failures before any frame: in a row
                    failures, first = failures + 1, first or first_line(e)
                    if failures >= max_consecutive_errors:
                        break
        except av.error.FFmpegError as e:  # the demuxer
            failures, first = failures + 1, first or first_line(e)
    raise VideoError(_nothing_decodes(str(path), failures, first))


def _nothing_decodes(path: str, failures: int, first: str | None) -> str:
    why = (
        f"{failures} packet(s) failed to decode, first: {first}"
        if failures
        else "the video stream holds none: empty or cut short"
    )
    return f"{path}: no frame decodes ({why})"


# ---------------------------------------------------------------------- the processor


class VideoProcessor:
    """Score a video's frames with ``score`` ((B, C, H, W) float32 in [0, 1] → (B,) P(positive);
    called from ``workers`` threads at once, so it must be thread-safe when workers > 1)."""

    def __init__(
        self,
        score: Callable[[np.ndarray], np.ndarray],
        input_shape: tuple[int, int, int],
        *,
        sample: str = "every:1",
        window: int = 8,
        workers: int = 1,
        batch: int = 16,
        stream: bool = False,
        quality: dict[str, float] | None = None,
        scene_detector: str = "adaptive",
        scene_threshold: float | None = None,
        max_consecutive_errors: int = 25,
        queue_size: int = 64,
        threshold: float = 0.5,
    ) -> None:
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
            raise VideoError(
                f"input shape {input_shape}: a video model takes (C, H, W) images with 1 or 3 "
                "channels, e.g. --input-shape 1,3,64,64"
            )
        for name, value in (
            ("window", window),
            ("workers", workers),
            ("batch", batch),
            ("queue_size", queue_size),
            ("max_consecutive_errors", max_consecutive_errors),
        ):
            if int(value) < 1:
                flag = "max-errors" if name == "max_consecutive_errors" else name.replace("_", "-")
                raise VideoError(f"--{flag} {value}: must be 1 or more")
        if not 0 < threshold < 1:
            raise VideoError(f"--threshold {threshold}: a probability between 0 and 1")
        self.scene_cuts = SceneCuts.parse(scene_detector, scene_threshold)
        self.score, self.input_shape = score, shape
        self.sampling = Sampling.parse(sample)
        self.window, self.workers, self.batch = int(window), int(workers), int(batch)
        self.stream, self.queue_size = stream, int(queue_size)
        self.quality = Quality.from_dict(quality)
        self.threshold = float(threshold)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.alpha = 2.0 / (self.window + 1)  # EMA weight of the newest frame's log-odds
        # Pillow's first import (about 80 ms) and resize, PySceneDetect's and OpenCV's (about
        # 0.4 s) and a detector's first frame, here rather than in the first frame's time
        model_input(np.zeros((2, 2, 3), np.uint8), shape)
        self.scene_cuts.cutter(25.0).feed(0, np.zeros((2, 2, 3), np.uint8))

    def settings(self) -> dict[str, Any]:
        return {
            "sample": self.sampling.describe(),
            "window": self.window,
            "ema_alpha": self.alpha,
            "threshold": self.threshold,
            "scene_cuts": self.scene_cuts.settings(),
            "quality": asdict(self.quality),
            "keep_sharpest": max(1, self.window // 4),
            "input_shape": list(self.input_shape),
            "workers": self.workers,
            "batch": self.batch,
            "stream": self.stream,
            "queue_size": self.queue_size,
            "max_consecutive_errors": self.max_consecutive_errors,
        }

    # ------------------------------------------------------------------ running
    def run(self, path: str | Path) -> Iterator[dict[str, Any]]:
        """Records, in order: ``frame`` per scored frame, ``window`` per complete window,
        ``summary`` last. Raises VideoError for a missing file, no video stream, or nothing
        that decodes."""
        from modelpress.extras import require

        av = require("av", "video", "modelpress video")
        path = str(path)
        container = _open(av, path)
        buffer = _Buffer(self.queue_size, drop_oldest=self.stream)
        counts = _Decoded()
        started = time.perf_counter()
        decoder = threading.Thread(
            target=self._decode,
            args=(av, container, buffer, counts),
            name="modelpress-video-decode",
            daemon=True,
        )
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="modelpress-video-score")
        decoder.start()
        try:
            yield from self._consume(path, buffer, pool, counts, started)
        finally:
            buffer.close()
            decoder.join()
            pool.shutdown(wait=True, cancel_futures=True)

    def _score(self, items: list[_Frame]) -> tuple[np.ndarray, float]:
        x = np.stack([it.x for it in items])  # (B, C, H, W)
        p = np.asarray(self.score(x), dtype=np.float64).reshape(-1)
        if len(p) != len(items):
            raise VideoError(f"the score function gave {len(p)} values for {len(items)} frames")
        if not np.all(np.isfinite(p)):
            raise VideoError(
                f"the model gave a non-finite score in the batch from frame {items[0].index}"
            )
        return np.clip(p, 0.0, 1.0), time.perf_counter()

    def _consume(
        self,
        path: str,
        buffer: _Buffer,
        pool: ThreadPoolExecutor,
        counts: _Decoded,
        started: float,
    ) -> Iterator[dict[str, Any]]:
        pending: deque[tuple[list[_Frame], Future]] = deque()  # in frame order
        state = _Timeline(self.alpha, self.threshold)
        finished = False
        while pending or not finished:
            if pending and pending[0][1].done():
                items, future = pending.popleft()
                p, done_at = future.result()
                yield from state.frames(items, p, done_at)
            elif not finished and len(pending) < self.workers:
                got = buffer.take(self.batch, timeout=0.002 if pending else None)
                if got is None:
                    finished = True
                elif got:
                    pending.append((got, pool.submit(self._score, got)))
            else:
                wait([pending[0][1]])
        if counts.error is not None:
            raise counts.error
        if counts.decoded == 0:
            raise VideoError(_nothing_decodes(path, counts.corrupt, counts.first_error))
        complete_windows = counts.sampled // self.window
        yield from state.close_window(
            complete=state.window is not None and state.window < complete_windows
        )
        elapsed = time.perf_counter() - started
        decision, rule = state.decision(self.window)
        yield {
            "type": "summary",
            "frames_decoded": counts.decoded,
            "frames_sampled": counts.sampled,
            "frames_processed": state.processed,
            "frames_skipped_quality": counts.skipped_quality,
            "frames_dropped": buffer.dropped,
            "frames_corrupt": counts.corrupt,
            "scene_cuts": counts.scene_cuts,
            "windows": state.windows,
            "windows_positive": state.windows_positive,
            "fps": state.processed / elapsed if elapsed > 0 else None,
            "seconds": elapsed,
            "latency_ms": {
                "p50": _ms(state.latency.percentile(50)),
                "p95": _ms(state.latency.percentile(95)),
            },
            "decision": decision,
            "rule": rule,
            "stopped_at": counts.stopped_at,
            "settings": self.settings(),
        }

    # ------------------------------------------------------------------ decoding (its thread)
    def _decode(self, av: Any, container: Any, buffer: _Buffer, counts: _Decoded) -> None:
        try:
            with container:
                self._demux(av, container, buffer, counts)
        except BaseException as e:  # handed to the consumer, which raises it
            counts.error = e
        finally:
            buffer.finish()

    def _demux(self, av: Any, container: Any, buffer: _Buffer, counts: _Decoded) -> None:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        sampler = _Sampler(self.sampling, slack=0.25 / rate)
        prep = _Preparer(self, buffer, counts)
        cuts = _Cuts(self.scene_cuts, rate, counts, sampler, prep)
        reach = _Reach(rate, container.name)
        errors_in_row = 0

        def failed(e: Exception) -> bool:
            """Count a failure; True when it is one too many in a row."""
            nonlocal errors_in_row
            counts.corrupt += 1
            reach.failed += 1
            errors_in_row += 1
            counts.first_error = counts.first_error or first_line(e)
            if errors_in_row < self.max_consecutive_errors:
                return False
            counts.stopped_at = {
                "frame": counts.last_index,
                "time": counts.last_time,
                "kind": "errors",
                "reason": f"{errors_in_row} packets in a row failed to decode "
                f"(first: {counts.first_error})",
            }
            return True

        # every stream's packets: their byte positions show the data a demuxer skipped
        packets = container.demux()
        while not buffer.closed:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as e:  # the demuxer: a fresh demux reads on from here
                if failed(e):
                    break
                packets = container.demux()
                continue
            gap = reach.see(packet)
            if packet.stream.index != stream.index:
                continue
            reach.packets += 1 if packet.size else 0
            lost = reach.lost_frames(packet, gap)
            if lost:  # the demuxer resynced past damaged bytes: the frames between are gone
                counts.corrupt += lost
                counts.first_error = counts.first_error or (
                    f"{gap} damaged bytes skipped by the demuxer, {lost} frames with them"
                )
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:  # InvalidDataError and its kin: a corrupt packet
                if reach.cut_short(packet):  # the last packet of a copy cut short: not damage
                    continue
                if failed(e):
                    break
                continue
            errors_in_row = 0
            for frame in frames:
                index = counts.decoded
                counts.decoded += 1
                t = float(frame.time) if frame.time is not None else index / rate
                counts.last_index, counts.last_time = index, t
                if not cuts.add(frame, index, t):
                    return  # the consumer has gone
        if not cuts.finish():  # the frames the detector held, on to sampling
            return
        prep.flush()
        if counts.stopped_at is not None:  # too many errors in a row: decoding ended there
            return
        # packets the decoder dropped without an error (no frame, even at the flush): damaged
        # too, in a file already seen damaged (a healthy stream may carry frameless packets)
        dropped = reach.packets - counts.decoded - reach.failed
        if dropped > 0 and counts.corrupt:
            counts.corrupt += dropped
        counts.stopped_at = _short_of_declared(container, stream, counts, rate, reach)


class _Reach:
    """How far into the file the demuxer read and what it jumped over: the byte span of every
    packet (any stream), the video packets' timestamps."""

    GAP_BYTES = 64  # more than container framing between packets (Matroska: 6-23 bytes)

    def __init__(self, rate: float, path: str) -> None:
        self.size: int | None = None  # the file's size in bytes (a local file)
        if "://" not in path:
            with contextlib.suppress(OSError):
                self.size = Path(path).stat().st_size
        self.end: int | None = None  # the byte after the furthest packet read
        self.packets = 0  # the video's packets, read
        self.failed = 0  # … that failed to decode (a demuxer error counts one too)
        self.largest = 0  # the largest packet, in bytes
        self.gap = 0  # the largest jump in bytes since the last video packet
        self.last_t: float | None = None  # the video's last decode timestamp, in seconds
        self.step = 1.0 / rate  # one frame, in seconds

    def see(self, packet: Any) -> int:
        """Note a packet's bytes; the largest jump since the last video packet."""
        pos, size = packet.pos, packet.size
        if pos is not None and pos >= 0 and size:
            if self.end is not None:
                self.gap = max(self.gap, pos - self.end)
            self.end = max(self.end or 0, pos + size)
            self.largest = max(self.largest, size)
        gap = self.gap
        return gap

    def lost_frames(self, packet: Any, gap: int) -> int:
        """The frames a video packet's timestamp says were skipped, when bytes were skipped
        before it too (a gap in timestamps alone is a variable frame rate, not damage)."""
        self.gap = 0
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is None or packet.time_base is None or not packet.size:
            return 0
        t = float(ts * packet.time_base)
        lost = 0
        if self.last_t is not None and gap > self.GAP_BYTES:
            lost = max(0, round((t - self.last_t) / self.step) - 1)
        if packet.duration and packet.time_base is not None:
            self.step = float(packet.duration * packet.time_base) or self.step
        if self.last_t is None or t > self.last_t:
            self.last_t = t
        return lost

    def cut_short(self, packet: Any) -> bool:
        """Whether the packet is the file's last bytes, read short (an index, MP4's, names
        more bytes than a copy cut short still has; the demuxer marks the packet corrupt)."""
        pos = packet.pos
        return (
            self.size is not None
            and pos is not None
            and pos + packet.size >= self.size
            and bool(getattr(packet, "is_corrupt", False))
        )

    def unread(self) -> tuple[int, int] | None:
        """(bytes after the furthest packet read, file size) of a local file, else None."""
        if self.end is None or self.size is None:
            return None
        return self.size - self.end, self.size

    def tail_allowance(self) -> int:
        """Bytes a file may hold after its last packet without data left unread: a partial
        packet where a copy was cut, an index (Matroska's Cues) at the end."""
        return max(2 * self.largest, 4096)


class _Sampler:
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


class _Cuts:
    """Every decoded frame → the scene-cut detector, and on to sampling once the detector has
    seen the ``lag`` frames after it (the adaptive detector compares a frame with those): a cut
    is counted, makes adaptive sampling dense from the cut's own frame on, and marks the first
    sampled frame from it on. Holds ``lag`` decoded frames at most."""

    def __init__(
        self,
        cuts: SceneCuts,
        rate: float,
        counts: _Decoded,
        sampler: _Sampler,
        prep: _Preparer,
    ) -> None:
        self.cutter = cuts.cutter(rate)
        self.lag = self.cutter.lag
        self.counts, self.sampler, self.prep = counts, sampler, prep
        self.size: tuple[int, int] | None = None  # the detector's frame size, from the first
        self.pending: deque[tuple[Any, int, float, float]] = deque()  # frame, index, time, when
        self.cuts: set[int] = set()  # pending frames that start a scene
        self.carry = False  # a cut on a frame that was not sampled: the next sampled one's
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()

    def add(self, frame: Any, index: int, t: float) -> bool:
        """False when the consumer has gone."""
        self.size = self.size or detect_size(frame.width, frame.height)
        w, h = self.size  # every frame at the first one's size (the detector compares pixels)
        bgr = self.reformatter.reformat(  # AREA: a larger frame's pixels averaged, noise too
            frame, format="bgr24", width=w, height=h, interpolation="AREA", **_sws_threads()
        ).to_ndarray()
        self.pending.append((frame, index, t, time.perf_counter()))
        self._found(self.cutter.feed(index, bgr))
        return self._release(index - self.lag)

    def finish(self) -> bool:
        self._found(self.cutter.finish())
        return self._release(None)

    def _found(self, indices: list[int]) -> None:
        for index in indices:
            self.counts.scene_cuts += 1
            t = next((t for _, i, t, _ in self.pending if i == index), None)
            if t is None:  # not pending (a detector later than its lag): the next sampled frame
                self.carry = True
                t = self.pending[-1][2] if self.pending else self.counts.last_time or 0.0
            self.cuts.add(index)
            self.sampler.cut(t)

    def _release(self, upto: int | None) -> bool:
        """Sample the pending frames up to decoded frame ``upto`` (None: all)."""
        while self.pending and (upto is None or self.pending[0][1] <= upto):
            frame, index, t, decoded_at = self.pending.popleft()
            if index in self.cuts:
                self.cuts.discard(index)
                self.carry = True
            if self.sampler.take(t, index):
                cut, self.carry = self.carry, False
                if not self.prep.add(frame, index, t, cut, decoded_at):
                    return False
        return True


class _Preparer:
    """Sampled frames → quality, the model's input; into the buffer. A window's frames that
    fail the quality filter wait until the window ends: if none of it passed, its sharpest k
    are scored after all."""

    def __init__(self, proc: VideoProcessor, buffer: _Buffer, counts: _Decoded) -> None:
        self.proc, self.buffer, self.counts = proc, buffer, counts
        self.rejected: list[_Frame] = []  # this window's failed frames (≤ window of them)
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
        item = _Frame(
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

    def _put(self, item: _Frame) -> bool:
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


def _short_of_declared(
    container: Any, stream: Any, counts: _Decoded, rate: float, reach: _Reach
) -> dict[str, Any] | None:
    """Where decoding ended, when the file declares more than was decoded or counted corrupt:
    its frame count, else the stream's duration, else the container's (if it holds only this
    stream; an audio track may run longer than the video). Bytes left unread after the last
    packet mean damaged data the demuxer could not read past (``corrupt``: the frames declared
    after it are counted corrupt); none, a copy cut short (``truncated``)."""
    if counts.last_time is None:
        return None
    declared = int(stream.frames or 0)
    accounted = counts.decoded + counts.corrupt
    missing, short = 0, None
    if declared:
        if accounted < declared:
            missing = declared - accounted
            short = f"after {accounted} of the {declared} frames it declares"
    else:
        duration = start = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
            start = float((stream.start_time or 0) * stream.time_base)
        elif container.duration is not None and len(container.streams) == 1:
            duration = container.duration / 1e6  # AV_TIME_BASE
            start = (container.start_time or 0) / 1e6
        if duration is None or start is None:
            return None
        decoded_span = counts.last_time - start + 1.0 / rate
        if decoded_span < duration - 2.0 / rate:
            missing = max(0, round((duration - decoded_span) * rate))
            short = f"at {decoded_span:.2f} s of the {duration:.2f} s it declares"
    if short is None:
        return None
    where = {"frame": counts.last_index, "time": counts.last_time}
    unread = reach.unread()
    if unread is not None and unread[0] > reach.tail_allowance():
        counts.corrupt += missing
        return where | {
            "kind": "corrupt",
            "reason": f"damaged data at byte {reach.end} of {unread[1]}: the demuxer read "
            f"nothing in the {unread[0]} bytes after it, so the video ends {short}; the file "
            f"is not cut short, and the {missing} frames after the damage count as corrupt",
        }
    return where | {"kind": "truncated", "reason": f"the file ends {short} (truncated?)"}


class _Timeline:
    """Scores in frame order → frame records (EMA of log-odds, reset at scene cuts) and
    window records; the video's decision from the windows."""

    def __init__(self, alpha: float, threshold: float) -> None:
        self.alpha, self.threshold = alpha, threshold
        self.z: float | None = None  # smoothed log-odds
        self.p_smooth: float | None = None
        self.processed = 0
        self.latency = _Reservoir()
        self.window: int | None = None  # the window being filled
        self.n = 0
        self.sum_p = self.sum_p2 = 0.0
        self.first: tuple[int, float] | None = None
        self.last: tuple[int, float] | None = None
        self.windows = self.windows_positive = 0

    def frames(
        self, items: list[_Frame], p: np.ndarray, done_at: float
    ) -> Iterator[dict[str, Any]]:
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


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds
