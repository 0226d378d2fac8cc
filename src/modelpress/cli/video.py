"""``modelpress video``: a cascade bundle or a binary model over video files, frame records and
a decision per video (``deploy/video.py``)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from modelpress.cli.common import Shape, Threads, TrustCode, app, console, user_errors
from modelpress.core.rundir import holding_output
from modelpress.errors import ModelpressError, first_line

DEFAULT_DATA = "builtin:digits-manipulated"
# runtimes whose run may be called from several threads at once; the others get a lock
THREAD_SAFE = {"torch", "torchscript", "onnxruntime"}


def _model(
    source: str, data: str | None, input_shape: str | None, threads: int | None, trust: bool
) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, int, int], Callable[[], None]]:
    """(score: (B, C, H, W) → P(positive), the model's (C, H, W), close) for a cascade bundle
    (a folder with cascade.json) or a binary model file."""
    from modelpress.core.inputs import parse_input_shape
    from modelpress.deploy.bundle import deployed_kind, open_stage_file
    from modelpress.deploy.calibration import calibrated_probs
    from modelpress.deploy.cascade import BUNDLE_FILE, Cascade, log_odds, open_model
    from modelpress.runtimes import runtime_for

    score: Callable[[np.ndarray], np.ndarray]
    if Path(source).is_dir():
        if input_shape:
            raise ModelpressError(
                f"--input-shape: a bundle's stages run at the shape they were built with "
                f"({Path(source) / BUNDLE_FILE}); drop --input-shape"
            )
        cascade = Cascade.load(source, data, threads, with_data=False)
        if cascade.task != "binary":
            cascade.close()
            raise ModelpressError(
                f"{source}: a {cascade.task} cascade; modelpress video scores one probability a "
                "frame and takes binary cascades (build one with --task binary)"
            )
        runtimes, specs, close = [s.runtime for s in cascade.stages], cascade.inputs, cascade.close

        def score(x: np.ndarray) -> np.ndarray:
            return cascade.predict([x]).p

    else:
        own = Path(source).is_file() and deployed_kind(Path(source)) in ("onnx", "tflite")
        if own and not data:  # the file's own shape: no data loaded
            shape = parse_input_shape(input_shape) if input_shape else None
            runtime, specs = open_stage_file(Path(source), threads, shape)
            head = runtime.run_all([np.zeros(specs[0].shape, np.float32)])[0]
            if int(np.prod(head.shape[1:])) not in (1, 2):
                runtime.close()
                raise ModelpressError(
                    f"{source}: gives {int(np.prod(head.shape[1:]))} outputs per item; modelpress "
                    "video takes a binary model (1 or 2 outputs) or a binary cascade bundle"
                )
        else:
            ctx, artifact = open_model(
                source, data or DEFAULT_DATA, threads, input_shape, trust=trust
            )
            runtime, specs = runtime_for(artifact, ctx.threads), ctx.data.input_specs()
        runtimes, close = [runtime], runtime.close

        def score(x: np.ndarray) -> np.ndarray:
            return calibrated_probs(log_odds(runtime.predict_all([x], len(x))[0]), 1.0)

    specs = specs or []
    if len(specs) != 1 or len(specs[0].shape) != 4:
        close()
        raise ModelpressError(
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
        raise ModelpressError(f"{source}: scoring a blank frame failed ({first_line(e)})") from None
    return score, (c, h, w), close


def _seconds(v: Any) -> str:
    return "—" if v is None else f"{v:.1f}"


def show(path: str, summary: dict[str, Any]) -> None:
    """One video's figures, then its decision's rule and where decoding stopped."""
    table = Table(title=Text(f"video {path}"), header_style="bold", title_justify="left")
    headers = (
        "decoded",
        "sampled",
        "skipped (quality)",
        "corrupt",
        "dropped",
        "scene cuts",
        "frames/s",
        "p50 ms",
        "p95 ms",
        "decision",
        "stopped at",
    )
    for header in headers:
        table.add_column(Text(header), justify="right")
    stopped = summary["stopped_at"]
    lat = summary["latency_ms"]
    table.add_row(
        *map(
            Text,
            [
                str(summary["frames_decoded"]),
                str(summary["frames_sampled"]),
                str(summary["frames_skipped_quality"]),
                str(summary["frames_corrupt"]),
                str(summary["frames_dropped"]),
                str(summary["scene_cuts"]),
                _seconds(summary["fps"]),
                "—" if lat["p50"] is None else f"{lat['p50']:.2f}",
                "—" if lat["p95"] is None else f"{lat['p95']:.2f}",
                str(summary["decision"]),
                "—" if not stopped else f"frame {stopped['frame']} ({stopped['time']:.2f} s)",
            ],
        )
    )
    console.print(table)
    lines = [f"decision: {summary['rule']}"]
    if stopped:
        lines.append(f"decoding stopped early: {stopped['reason']}")
    console.print(Text("\n".join(lines)))


@user_errors
@holding_output("out", folder=False, example="results.jsonl")  # one run writes OUT
def video(
    source: Annotated[
        str,
        typer.Argument(help="A cascade bundle (folder with cascade.json) or a binary model file."),
    ],
    videos: Annotated[list[Path], typer.Argument(help="Video files (anything FFmpeg reads).")],
    out: Annotated[Path, typer.Option("--out", help="JSON lines to write, e.g. results.jsonl.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help=f"Data whose inputs fit the model (its input spec; default {DEFAULT_DATA}, "
            "a bundle's own data for a bundle).",
        ),
    ] = None,
    input_shape: Shape = None,
    sample: Annotated[
        str, typer.Option("--sample", help="every:N | fps:R | adaptive[:R] (denser after cuts).")
    ] = "every:1",
    window: Annotated[int, typer.Option("--window", min=1, help="Sampled frames a window.")] = 8,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Scoring threads.")] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Frames a batch at most.")] = 16,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Live input: drop the oldest frame when behind (counted)."),
    ] = False,
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="Positive at smoothed P ≥ this.")
    ] = 0.5,
    scene_detector: Annotated[
        str,
        typer.Option(
            "--scene-detector",
            help="PySceneDetect's detector of scene cuts: adaptive (a change that stands out "
            "from its neighbours'; each frame waits for the 4 after it) or content (a change "
            "over a fixed threshold; no wait).",
        ),
    ] = "adaptive",
    scene_threshold: Annotated[
        float | None,
        typer.Option(
            "--scene-threshold",
            help="In the detector's units: adaptive, the ratio of a frame's change to its "
            "neighbours' (default 3); content, the mean change of saturation and brightness, "
            "0–255 (default 27).",
        ),
    ] = None,
    min_sharpness: Annotated[
        float, typer.Option("--min-sharpness", help="Laplacian variance below: skipped.")
    ] = 1e-4,
    min_brightness: Annotated[float, typer.Option("--min-brightness")] = 0.03,
    max_brightness: Annotated[float, typer.Option("--max-brightness")] = 0.97,
    queue_size: Annotated[int, typer.Option("--queue-size", min=1)] = 64,
    max_errors: Annotated[
        int,
        typer.Option("--max-errors", min=1, help="Consecutive bad packets that end decoding."),
    ] = 25,
    threads: Threads = None,
    trust: TrustCode = False,
) -> None:
    """Score every sampled frame of each video: one JSON line per frame, per window and a summary
    per video (scene cuts, quality skips, corrupt packets, where decoding stopped)."""
    from modelpress.chatter import verbose
    from modelpress.core.rundir import check_output
    from modelpress.deploy.scenecuts import SceneCuts
    from modelpress.deploy.video import Quality, Sampling, VideoProcessor, check_video
    from modelpress.extras import require

    check_output(out, "--out", folder=False, example="results.jsonl")
    quality = {
        "min_sharpness": min_sharpness,
        "min_brightness": min_brightness,
        "max_brightness": max_brightness,
    }
    Sampling.parse(sample), Quality.from_dict(quality)  # refused before anything is loaded
    SceneCuts.parse(scene_detector, scene_threshold)
    require("scenedetect", "video", "modelpress video")
    for path in videos:  # every input opened, its first frame decoded, before any work
        check_video(path, max_errors)
    if verbose():
        import av

        av.logging.set_level(av.logging.WARNING)
    score, shape, close = _model(source, data, input_shape, threads, trust)
    tmp = out.with_name(out.name + ".tmp")
    try:
        processor = VideoProcessor(
            score,
            shape,
            sample=sample,
            window=window,
            workers=workers,
            batch=batch,
            stream=stream,
            quality=quality,
            scene_detector=scene_detector,
            scene_threshold=scene_threshold,
            max_consecutive_errors=max_errors,
            queue_size=queue_size,
            threshold=threshold,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w") as f:
            for path in videos:
                f.write(json.dumps({"type": "video", "path": str(path)}) + "\n")
                summary: dict[str, Any] = {}
                for record in processor.run(path):
                    f.write(json.dumps(record) + "\n")
                    summary = record
                show(str(path), summary)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        close()
    console.print(Text(f"wrote {out}"))


def register() -> None:
    app.command("video")(video)
