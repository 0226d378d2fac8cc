"""`modelpress video` over generated clips: frames/s, peak memory against clip length, a cut copy.

    python benchmarks/bench_video.py [--epochs 3] [--fps 25] [--workers 2] [--threads 1]
                                     [--repeats 3] [--fresh]

Trains (cached under runs/bench/video/) a binary zoo:dscnn ×0.5 on builtin:digits-manipulated at
1×64×64 with modelpress, exports it to INT8 ONNX with modelpress, writes 64×64 test clips
(tests/helpers/video.py: digits on coloured scenes, H.264 in Matroska) of 1 s, 20 s and 100 s and a
copy of the 20 s clip cut at half its bytes, and runs the real CLI, ``modelpress video MODEL
CLIP --sample every:1``, once per clip (the 20 s clip --repeats times), each in a child process
of its own started by measure_child.py, so that its peak resident memory is its own (a child
started straight from here would report this process's peak, see there). Frames/s and the
latencies come from the summary record of its results.jsonl. Memory: the whole run's peak, and
apart the peak from the moment scoring starts (the CLI opens its output) with the resident
memory at that moment; the 1 s clip shows the fixed cost every run carries (Python, the
runtimes, the data the model's input spec is read from).
PASS/FAIL (reported, not asserted; the exit code is 0 whatever they say):
  - the 20 s 64×64 clip at ≥ 100 frames/s (every frame scored; the median of --repeats runs);
  - peak memory on the 100 s clip within ±10 % of the 20 s clip's: the whole run's, and the
    scoring phase's (the whole run's peak is set while loading, which hides the scoring);
  - the truncated copy: exit code 0, a partial result (fewer frames than the whole clip) with
    ``stopped_at`` in its summary.
Figures go to runs/bench/video/results.json as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.training import TrainConfig, train_and_save

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the test clips' maker
from helpers.video import make_video, truncate

DATA = "builtin:digits-manipulated"
SHAPE = "1,1,64,64"
SIZE = 64
ROOT = Path("runs/bench/video")
CLIPS = {"1 s": 1, "20 s": 20, "100 s": 100}  # name → seconds
CUT_FRACTION = 0.5


def _trained(epochs: int, fresh: bool) -> Path:
    path = ROOT / "dscnn-64.pt"
    if path.is_file() and not fresh:
        return path
    recipe = build_recipe(
        {
            "model": "zoo:dscnn",
            "model_kwargs": {"width_mult": 0.5},
            "data": DATA,
            "input_shape": SHAPE,
        }
    )
    train_and_save(recipe, TrainConfig(epochs=epochs, lr=3e-3, seed=0), path)
    return path


def _exported(checkpoint: Path, fresh: bool) -> Path:
    """INT8 ONNX through an export step, as any recipe makes it (its run cached by key)."""
    out = ROOT / "export-int8"
    recipe = build_recipe(
        {
            "model": str(checkpoint.resolve()),
            "data": DATA,
            "input_shape": SHAPE,
            "evaluate": {"repeats": 5},
            "steps": [{"type": "export", "format": "onnx", "precision": "int8"}],
        }
    )
    record = pipeline.run(recipe, out=out, resume=not fresh, force=fresh)
    return out / record["artifacts"][-1]["path"]


def _clips(fps: int, fresh: bool) -> dict[str, Path]:
    folder = ROOT / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, seconds in CLIPS.items():
        path = folder / f"digits-{seconds}s-{SIZE}px-{fps}fps.mkv"
        if fresh or not path.is_file():
            # one scene per 5 s (at least one): cuts in every clip, the same density in each
            make_video(path, seconds, fps=fps, size=SIZE, scenes=max(1, seconds // 5))
        clips[name] = path
    whole = clips["20 s"]
    clips["20 s cut"] = truncate(whole, folder / f"{whole.stem}-cut.mkv", CUT_FRACTION)
    return clips


def _run_cli(
    model: Path, clip: Path, out: Path, workers: int, threads: int | None
) -> dict[str, Any]:
    """``modelpress video`` in a child process of its own, started by measure_child.py: exit
    code, wall and CPU seconds, peak RSS (MB) of the whole run and of its scoring phase (from
    the moment it opens its output), its summary record."""
    cli = [sys.executable, "-m", "modelpress.cli.app", "video", str(model), str(clip)]
    cli += ["--out", str(out), "--sample", "every:1", "--workers", str(workers)]
    if threads:
        cli += ["--threads", str(threads)]
    out.unlink(missing_ok=True)
    figures, log = out.with_suffix(".rss.json"), out.with_suffix(".log")
    tmp = out.with_name(out.name + ".tmp")  # what the CLI writes while scoring
    launcher = [sys.executable, str(Path(__file__).with_name("measure_child.py")), str(figures)]
    with log.open("w") as f:
        subprocess.run([*launcher, "--phase-starts", str(tmp), "--", *cli], stdout=f, stderr=f)
    run = json.loads(figures.read_text())
    summary = None
    if out.is_file():
        records = [json.loads(line) for line in out.read_text().splitlines()]
        summaries = [r for r in records if r["type"] == "summary"]
        summary = summaries[-1] if summaries else None
    return {"clip": str(clip), "clip_bytes": clip.stat().st_size, **run, "summary": summary}


def _f(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _table(runs: dict[str, dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    cols = (
        "clip",
        "exit",
        "decoded",
        "scored",
        "cuts",
        "frames/s",
        "video s",
        "wall s",
        "CPU s",
        "peak MB",
        "RSS at scoring MB",
        "peak scoring MB",
        "p50 ms",
        "p95 ms",
        "decision",
        "stopped at",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("clip", "decision") else "right")
    for name, r in runs.items():
        s = r["summary"] or {}
        lat = s.get("latency_ms") or {}
        stop = s.get("stopped_at")
        table.add_row(
            name,
            str(r["exit_code"]),
            str(s.get("frames_decoded", "—")),
            str(s.get("frames_processed", "—")),
            str(s.get("scene_cuts", "—")),
            _f(s.get("fps"), ".0f"),
            _f(s.get("seconds"), ".2f"),
            f"{r['wall_s']:.2f}",
            f"{r['cpu_s']:.2f}",
            f"{r['peak_mb']:.1f}",
            _f(r["rss_at_phase_start_mb"], ".1f"),
            _f(r["peak_in_phase_mb"], ".1f"),
            _f(lat.get("p50"), ".2f"),
            _f(lat.get("p95"), ".2f"),
            str(s.get("decision", "—")),
            "—" if not stop else f"frame {stop['frame']} ({stop['time']:.2f} s)",
        )
    return table


def _checks(runs: dict[str, dict[str, Any]], fps: int) -> list[tuple[str, bool, str]]:
    short, long, cut = runs["20 s"], runs["100 s"], runs["20 s cut"]
    s20 = short["summary"] or {}
    repeats = [r for k, r in runs.items() if k == "20 s" or k.startswith("20 s #")]
    rates = [(r["summary"] or {}).get("fps") or 0.0 for r in repeats]
    rate = statistics.median(rates) if all(r["exit_code"] == 0 for r in repeats) else None
    every = all(
        (r["summary"] or {}).get("frames_processed") == 20 * fps
        and r["summary"]["frames_decoded"] == 20 * fps
        for r in repeats
    )
    ratio = long["peak_mb"] / short["peak_mb"]
    scoring = [r["peak_in_phase_mb"] for r in (short, long)]
    scoring_ratio = scoring[1] / scoring[0] if None not in scoring else None
    sc = cut["summary"] or {}
    stop = sc.get("stopped_at")
    partial = bool(stop) and 0 < sc.get("frames_decoded", 0) < s20.get("frames_decoded", 0)
    where = f"frame {stop['frame']} ({stop['time']:.2f} s)" if stop else "nowhere (no stopped_at)"
    return [
        (
            f"20 s {SIZE}×{SIZE} clip ≥ 100 frames/s (every frame scored)",
            rate is not None and rate >= 100 and every,
            f"median {_f(rate, '.1f')} frames/s over {len(repeats)} runs "
            f"({', '.join(f'{x:.0f}' for x in rates)}), {s20.get('frames_processed')} of "
            f"{s20.get('frames_decoded')} decoded frames scored",
        ),
        (
            "peak memory on the 5× clip within ±10 % of the 20 s clip",
            long["exit_code"] == 0 and abs(ratio - 1) <= 0.10,
            f"{long['peak_mb']:.1f} MB vs {short['peak_mb']:.1f} MB ({ratio:.3f}×)",
        ),
        (
            "peak memory while scoring (from the first frame on) on the 5× clip within ±10 %",
            scoring_ratio is not None and abs(scoring_ratio - 1) <= 0.10,
            f"{_f(scoring[1], '.1f')} MB vs {_f(scoring[0], '.1f')} MB "
            f"({_f(scoring_ratio, '.3f')}×)",
        ),
        (
            "truncated copy: partial result with stopped_at",
            partial,
            f"stopped at {where}, "
            f"{sc.get('frames_decoded')} of {s20.get('frames_decoded')} frames decoded; "
            f"reason: {stop and stop['reason']}",
        ),
        ("truncated copy: exit code 0", cut["exit_code"] == 0, f"exit code {cut['exit_code']}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fps", type=int, default=25, help="Frames a second of the clips.")
    parser.add_argument("--workers", type=int, default=2, help="--workers of modelpress video.")
    parser.add_argument("--threads", type=int, default=1, help="--threads (0: the default).")
    parser.add_argument(
        "--repeats", type=int, default=3, help="Runs over the 20 s clip (frames/s: their median)."
    )
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    console = Console(width=200)
    if args.fresh and ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir(parents=True, exist_ok=True)
    model = _exported(_trained(args.epochs, args.fresh), args.fresh)
    clips = _clips(args.fps, args.fresh)
    outputs = ROOT / "out"
    outputs.mkdir(exist_ok=True)
    runs = {}
    for name, clip in clips.items():
        for i in range(args.repeats if name == "20 s" else 1):
            key, stem = (
                (name, clip.stem) if i == 0 else (f"{name} #{i + 1}", f"{clip.stem}-{i + 1}")
            )
            runs[key] = _run_cli(
                model, clip, outputs / f"{stem}.jsonl", args.workers, args.threads or None
            )
    settings = (
        f"--sample every:1 --workers {args.workers} --threads {args.threads or 'default'}, "
        f"{os.cpu_count()} CPUs"
    )
    console.print(
        _table(
            runs,
            f"modelpress video, {model.name} over {SIZE}×{SIZE} clips at {args.fps} fps "
            f"({settings})",
        )
    )
    for name, r in runs.items():
        if r["peak_in_phase_mb"] is not None:
            when = (
                "while scoring" if r["peak_in_phase_mb"] >= r["peak_before_phase_mb"] else "loading"
            )
            console.print(
                f"{name}: the process's peak is set {when}; "
                f"scoring adds {r['peak_in_phase_mb'] - r['rss_at_phase_start_mb']:.1f} MB "
                f"to the {r['rss_at_phase_start_mb']:.1f} MB resident when it starts"
            )
    checks = _checks(runs, args.fps)
    for name, ok, value in checks:
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    results = {
        "model": str(model),
        "settings": {
            "fps": args.fps,
            "size": SIZE,
            "sample": "every:1",
            "workers": args.workers,
            "threads": args.threads or None,
            "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
        },
        "runs": runs,
        "checks": [{"name": n, "pass": ok, "value": v} for n, ok, v in checks],
    }
    (ROOT / "results.json").write_text(json.dumps(results, indent=2))
    console.print(f"wrote {ROOT / 'results.json'}")


if __name__ == "__main__":
    main()
