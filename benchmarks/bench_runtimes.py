"""Eager vs TorchScript vs ONNX Runtime latency for the demo model, as ratios from one run.

    python benchmarks/bench_runtimes.py [--checkpoint runs/demo/baseline.pt] [--threads 2]

Each runtime is timed in interleaved rounds (so drift in machine load hits all of them alike)
with the library's own timing loop; the table gives median and p90 per runtime and the speedup
over eager measured side by side. Not part of the test suite: these machines are noisy.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from modelpress.core.recipe import build_recipe
from modelpress.demo import INPUT_SHAPE, MODEL, train_config
from modelpress.engine.context import build_context
from modelpress.engine.measure.benchmark import time_callable
from modelpress.engine.train import train_and_save
from modelpress.runtimes import runtime_for
from modelpress.steps.export import ExportConfig
from modelpress.steps.export.onnx import to_onnx
from modelpress.steps.torchscript import TorchScriptConfig, to_torchscript


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/baseline.pt"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="modelpress-bench-"))

    checkpoint = args.checkpoint
    if not checkpoint.is_file():
        console.print(f"{checkpoint} not found: training the demo model ({MODEL}) first")
        checkpoint = work / "baseline.pt"
        spec = {"model": MODEL, "data": "builtin:digits", "input_shape": INPUT_SHAPE}
        recipe = build_recipe(spec)
        train_and_save(recipe, train_config(quick=True), checkpoint)

    recipe = build_recipe(
        {"model": str(checkpoint), "data": "builtin:digits", "evaluate": {"threads": args.threads}}
    )
    ctx, baseline = build_context(recipe)
    artifacts = {
        "torch eager": baseline,
        "TorchScript (frozen)": to_torchscript(baseline, TorchScriptConfig(), ctx, work / "m.pt"),
        "ONNX Runtime": to_onnx(baseline, ExportConfig(), ctx, work / "m.onnx"),
    }
    batch = ctx.data.validation.sample_batch(args.batch)
    calls = {name: runtime_for(art, args.threads).prepare(batch) for name, art in artifacts.items()}
    times: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, fn in calls.items():
            times[name].append(time_callable(fn, warmup=10, repeats=args.repeats))

    eager = float(np.median(np.concatenate(times["torch eager"])))
    table = Table(
        title=f"{checkpoint.name}: batch {args.batch}, {args.threads} threads, "
        f"{args.rounds}×{args.repeats} timed calls each"
    )
    for col in ("runtime", "median ms", "p90 ms", "speedup vs eager"):
        table.add_column(col, justify="left" if col == "runtime" else "right")
    for name, chunks in times.items():
        t = np.concatenate(chunks)
        median = float(np.median(t))
        p90 = float(np.percentile(t, 90))
        table.add_row(name, f"{median:.3f}", f"{p90:.3f}", f"{eager / median:.2f}×")
    console.print(table)


if __name__ == "__main__":
    main()
