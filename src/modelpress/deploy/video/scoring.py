"""What scores a video's frames: a cascade bundle, or a model file read through the task a
cascade runs by default. Either way one probability a frame, P(positive): the Task is asked
whether its answer is one (its exit rule's ``one_probability``), never which task it is."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from modelpress.deploy.video.frames import VideoError
from modelpress.errors import ModelpressError, first_line

# runtimes whose run may be called from several threads at once; the others get a lock
THREAD_SAFE = {"torch", "torchscript", "onnxruntime"}

Score = Callable[[np.ndarray], np.ndarray]  # (B, C, H, W) float32 in [0, 1] → (B,) P(positive)


class VideoModel(NamedTuple):
    score: Score  # safe to call from several threads
    shape: tuple[int, int, int]  # (C, H, W) of a frame as the model takes it
    close: Callable[[], None]
    threads: int  # the threads its runtimes run at (``evaluate/benchmark.timing_threads``)


def video_scorer(
    source: str,
    data: str | None,
    input_shape: str | None,
    threads: int | None,
    trust: bool,
    *,
    default_data: str,
) -> VideoModel:
    """(score, the model's (C, H, W), close, its runtimes' threads) for a cascade bundle (a
    folder with cascade.json) or a model file: safe to call from several threads, run once on a
    blank frame. A model file that does not give its input shape itself takes it from
    ``data``, else ``default_data``."""
    from modelpress.deploy.bundle import BUNDLE_FILE

    if Path(source).is_dir():
        if input_shape:
            raise VideoError(
                f"--input-shape: a bundle's stages run at the shape they were built with "
                f"({Path(source) / BUNDLE_FILE}); drop --input-shape"
            )
        score, runtimes, specs, close = _bundle(source, data, threads)
    else:
        score, runtimes, specs, close = _model_file(
            source, data, default_data, input_shape, threads, trust
        )
    specs = specs or []
    if len(specs) != 1 or len(specs[0].shape) != 4:
        close()
        raise VideoError(
            f"{source}: takes {', '.join(s.describe() for s in specs)}; a video model takes one "
            "image input N,C,H,W (set it with --input-shape, e.g. 1,1,32,32)"
        )
    if not all(r.name in THREAD_SAFE for r in runtimes):
        lock, unlocked = threading.Lock(), score

        def score(x: np.ndarray) -> np.ndarray:
            with lock:
                return unlocked(x)

    _, c, h, w = (int(d) for d in specs[0].shape)
    try:  # once before any frame: the runtime's first run and lazy imports (scipy) happen here
        score(np.zeros((1, c, h, w), np.float32))
    except Exception as e:
        close()
        raise VideoError(f"{source}: scoring a blank frame failed ({first_line(e)})") from None
    return VideoModel(score, (c, h, w), close, max(r.threads for r in runtimes))


def _bundle(source: str, data: str | None, threads: int | None) -> tuple:
    from modelpress.deploy.cascade import Cascade

    cascade = Cascade.load(source, data, threads, with_data=False)
    if not cascade.rule.one_probability:
        cascade.close()
        raise VideoError(
            f"{source}: a {cascade.task.name} cascade; modelpress video scores one probability "
            "a frame and takes binary cascades (build one with --task binary)"
        )

    def score(x: np.ndarray) -> np.ndarray:
        return cascade.predict([x]).p

    return score, [s.runtime for s in cascade.stages], cascade.inputs, cascade.close


def _model_file(
    source: str,
    data: str | None,
    default_data: str,
    input_shape: str | None,
    threads: int | None,
    trust: bool,
) -> tuple:
    """A model file through the default cascade task: its scores (log-odds of the positive
    class) as probabilities at temperature 1."""
    from modelpress.deploy.bundle import deployed_kind, open_stage_file
    from modelpress.deploy.calibration import calibrated_probs
    from modelpress.deploy.exits import cascade_task
    from modelpress.deploy.models import open_model
    from modelpress.runtimes import runtime_for
    from modelpress.sources.inputs import parse_input_shape

    task, rule = cascade_task(None)
    if not rule.one_probability:
        raise VideoError(
            f"{source}: a model file is read as a {task.name} model, which answers with more "
            "than one probability a frame; give a cascade bundle of one probability a frame"
        )
    own = Path(source).is_file() and deployed_kind(Path(source)) in ("onnx", "tflite")
    if own and not data:  # the file's own shape: no data loaded
        shape = parse_input_shape(input_shape) if input_shape else None
        runtime, specs = open_stage_file(Path(source), threads, shape)
        head = runtime.run_all([np.zeros(specs[0].shape, np.float32)])
        try:
            scores = task.cascade_scores(head)
        except ModelpressError:
            scores = None
        if scores is None or scores.ndim != 1:
            runtime.close()
            raise VideoError(
                f"{source}: gives {int(np.prod(head[0].shape[1:]))} outputs per item; modelpress "
                "video takes a binary model (1 or 2 outputs) or a binary cascade bundle"
            )
    else:
        ctx, artifact = open_model(source, data or default_data, threads, input_shape, trust=trust)
        runtime, specs = runtime_for(artifact, ctx.threads), ctx.data.input_specs()

    def score(x: np.ndarray) -> np.ndarray:
        return calibrated_probs(task.cascade_scores(runtime.predict_all([x], len(x))), 1.0)

    return score, [runtime], specs, runtime.close
