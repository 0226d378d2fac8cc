"""Each technique alone on one baseline, side by side: what ``modelpress compare`` prints.

    python benchmarks/bench_compare.py [--epochs 3] [--formats onnx] [--fresh]

zoo:resnet18 trained on the built-in digits at 64×64×3 (the checkpoint bench_quantization
caches under runs/bench/, trained on first use), then every technique of ``modelpress
compare`` applied alone to it — dynamic, static and FP16 quantization per format (with the
format's FP32 export as reference), TorchScript, unstructured and structured pruning,
distillation into a half-width ResNet-18, QAT — each measured in its own runtime in one run.
The table names the best for size, speed and accuracy. PASS/FAIL: every technique has a
measured row, and each "best for" goes to the row that really is best.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from modelpress import techniques
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.train import train_and_save
from modelpress.report import terminal
from modelpress.training import TrainConfig

CHECKPOINT = Path("runs/bench/resnet18-digits64.pt")  # shared with bench_quantization.py
SHAPE = "1,3,64,64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/compare"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--formats", default="onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="recompute every node")
    args = parser.parse_args()
    console = Console(width=200)

    if not CHECKPOINT.is_file():
        console.print(f"training zoo:resnet18 → {CHECKPOINT} (cached next time)")
        CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
        train = build_recipe(
            {"model": "zoo:resnet18", "data": "builtin:digits", "input_shape": SHAPE}
        )
        train_and_save(train, TrainConfig(epochs=4, lr=1e-3, seed=0), CHECKPOINT)

    formats = techniques.parse(args.formats, techniques.FORMATS, "--formats")
    steps, compared = techniques.steps(
        list(techniques.TECHNIQUES),
        formats,
        epochs=args.epochs,
        student="zoo:resnet18",
        student_kwargs={"width_mult": 0.5},
    )
    recipe = build_recipe(
        {
            "name": "bench-compare",
            "model": str(CHECKPOINT.resolve()),
            "data": "builtin:digits",
            "input_shape": SHAPE,
            "steps": steps,
            "compare": compared,
            "evaluate": {"threads": args.threads, "repeats": 50},
        }
    )
    resume = (args.out / "record.json").is_file() and not args.fresh
    console.print(f"{len(steps)} steps into {args.out} ({'resumed' if resume else 'fresh'}) …")
    record = pipeline.run(recipe, out=args.out, resume=resume, force=not resume)

    console.print(terminal.techniques_table(record))
    rows = record["techniques"]
    measured = [r for r in rows if r["status"] in ("ok", "degraded")]
    failed = [f"{r['technique']}: {r['error']}" for r in rows if r not in measured]
    checks = [
        (f"every technique measured in its runtime ({len(measured)}/{len(rows)})", not failed),
    ]
    key = record["primary_metric"]
    for what, value, pick in (
        ("size", lambda r: r["size_bytes"], min),
        ("speed", lambda r: r["latency_ms"], min),
        ("accuracy", lambda r: r["metrics"].get(key), max),
    ):
        best = pick(value(r) for r in measured) if measured else None
        named = [r for r in measured if what in r["best_for"]]
        ok = bool(named) and all(value(r) == best for r in named)
        checks.append((f"best for {what}: {', '.join(r['technique'] for r in named)}", ok))
    for text, ok in checks:
        console.print(f"{'PASS' if ok else 'FAIL'}  {text}")
    for line in failed:
        console.print(f"      {line}")


if __name__ == "__main__":
    main()
