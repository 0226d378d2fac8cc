"""``modelpress video``: a cascade bundle or a binary model over video files, frame records and
a decision per video (``deploy/video.py``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from modelpress.cli.common import Shape, Threads, TrustCode, app, console, user_errors
from modelpress.core.rundir import holding_output

DEFAULT_DATA = "builtin:digits-manipulated"  # what a model file's input spec comes from


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
    from modelpress.deploy.video import (
        Quality,
        Sampling,
        VideoProcessor,
        check_video,
        video_scorer,
    )
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
    model = video_scorer(source, data, input_shape, threads, trust, default_data=DEFAULT_DATA)
    tmp = out.with_name(out.name + ".tmp")
    try:
        processor = VideoProcessor(
            model.score,
            model.shape,
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
            threads=model.threads,
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
        model.close()
    console.print(Text(f"wrote {out}"))


def register() -> None:
    app.command("video")(video)
