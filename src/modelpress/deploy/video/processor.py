"""``VideoProcessor``: a video's frames through a scoring function, in frame order, as
records; decoding on its own thread (``decode.py``), scoring on ``workers`` threads."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.deploy.scenecuts import SceneCuts
from modelpress.deploy.video.decode import Decoded, decode, nothing_decodes, open_video
from modelpress.deploy.video.frames import Frame, Quality, Sampling, VideoError, model_input
from modelpress.deploy.video.timeline import Buffer, Timeline, to_ms
from modelpress.evaluate.benchmark import clock


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
        threads: int | None = None,
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
        self.threads = threads  # the model's runtime threads, for the record (None: not known)
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
            "threads": self.threads,
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
        container = open_video(av, path)
        buffer = Buffer(self.queue_size, drop_oldest=self.stream)
        counts = Decoded()
        started = clock()
        decoder = threading.Thread(
            target=decode,
            args=(self, av, container, buffer, counts),
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

    def _score(self, items: list[Frame]) -> tuple[np.ndarray, float]:
        x = np.stack([it.x for it in items])  # (B, C, H, W)
        p = np.asarray(self.score(x), dtype=np.float64).reshape(-1)
        if len(p) != len(items):
            raise VideoError(f"the score function gave {len(p)} values for {len(items)} frames")
        if not np.all(np.isfinite(p)):
            raise VideoError(
                f"the model gave a non-finite score in the batch from frame {items[0].index}"
            )
        return np.clip(p, 0.0, 1.0), clock()

    def _consume(
        self,
        path: str,
        buffer: Buffer,
        pool: ThreadPoolExecutor,
        counts: Decoded,
        started: float,
    ) -> Iterator[dict[str, Any]]:
        pending: deque[tuple[list[Frame], Future]] = deque()  # in frame order
        state = Timeline(self.alpha, self.threshold)
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
            raise VideoError(nothing_decodes(path, counts.corrupt, counts.first_error))
        complete_windows = counts.sampled // self.window
        yield from state.close_window(
            complete=state.window is not None and state.window < complete_windows
        )
        elapsed = clock() - started
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
                "p50": to_ms(state.latency.percentile(50)),
                "p95": to_ms(state.latency.percentile(95)),
            },
            "decision": decision,
            "rule": rule,
            "stopped_at": counts.stopped_at,
            "settings": self.settings(),
        }
