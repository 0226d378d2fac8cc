"""``modelpress demo``: train a zoo CNN on the built-in digits, then run the demo recipe.

Everything lands in one run directory: ``baseline.pt`` (the trained checkpoint, reused when its
training config is unchanged), ``recipe.yaml`` (replayable with ``modelpress run``), the record,
the artifacts and the reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modelpress.core.observer import Observer
from modelpress.core.recipe import build_recipe
from modelpress.core.rundir import check_output, stable_hash
from modelpress.engine import pipeline
from modelpress.engine.train import train_and_save
from modelpress.errors import ResumeError
from modelpress.training import TrainConfig

MODEL = "zoo:resnet_tiny"
INPUT_SHAPE = "1,1,32,32"


def train_config(quick: bool) -> TrainConfig:
    return TrainConfig(
        epochs=4 if quick else 10, lr=3e-3, batch_size=64, scheduler="cosine", seed=0
    )


def demo_recipe(checkpoint: Path, quick: bool, threads: int | None) -> dict[str, Any]:
    """The baseline's own exports first, then the chain distill → structured prune → INT8
    (each step takes the newest artifact it accepts, so the later exports are the student's)."""
    return {
        "name": "demo",
        "model": str(checkpoint.resolve()),
        "data": {"source": "builtin:digits", "seed": 0},
        "task": "classification",
        "targets": {"max_accuracy_drop": 1.5, "max_size_mb": 0.5, "min_speedup": 2.0},
        "steps": [
            {"type": "torchscript", "optimize_for_mobile": True},
            {"type": "export", "format": "onnx"},
            {"type": "export", "format": "onnx", "precision": "int8"},
            {"type": "export", "format": "tflite"},
            {"type": "export", "format": "tflite", "precision": "int8"},
            {
                "type": "distill",
                "student": "zoo:dscnn",  # 15× fewer parameters than the resnet_tiny teacher
                "epochs": 4 if quick else 8,
                "lr": 1e-2,
                "temperature": 4.0,
                "alpha": 0.3,
            },
            {
                "type": "prune",
                "method": "structured",
                "ratio": 0.25,
                "round_to": 8,
                "finetune_epochs": 2 if quick else 4,
                "lr": 3e-3,
                "teacher": "input",  # the unpruned student teaches its pruned self
            },
            {"type": "export", "format": "onnx", "precision": "int8", "name": "student-onnx-int8"},
            {
                "type": "export",
                "format": "tflite",
                "precision": "int8",
                "name": "student-tflite-int8",
            },
        ],
        "evaluate": {
            "warmup": 5 if quick else 20,
            "repeats": 20 if quick else 100,
            "batch_sizes": [1, 32],
            **({"threads": threads} if threads else {}),
        },
    }


def _trained(checkpoint: Path, train_recipe: Any, cfg: TrainConfig) -> bool:
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:  # none yet, or unreadable (truncated, not ours): train it afresh
        return False
    meta = ckpt.get("modelpress") if isinstance(ckpt, dict) else None
    return isinstance(meta, dict) and meta.get("train_hash") == stable_hash(
        {"train": cfg.model_dump(), "identity": train_recipe.identity()}
    )


def run_demo(
    out: Path, *, quick: bool = False, threads: int | None = None, observer: Observer | None = None
) -> dict[str, Any]:
    observer = observer or Observer()
    check_output(out, "--out", folder=True)  # before training: a file or read-only folder
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "baseline.pt"
    cfg = train_config(quick)
    train_recipe = build_recipe(
        {
            "model": MODEL,
            "data": "builtin:digits",
            "input_shape": INPUT_SHAPE,
            "task": "classification",
            **({"evaluate": {"threads": threads}} if threads else {}),
        }
    )
    fresh = not _trained(checkpoint, train_recipe, cfg)
    if fresh:
        observer.event("train", f"training {MODEL} on builtin:digits ({cfg.epochs} epochs)")
        train_and_save(train_recipe, cfg, checkpoint, observer)
    else:
        observer.event("resume", f"{checkpoint}: trained before with this config, reused")
    recipe = build_recipe(demo_recipe(checkpoint, quick, threads), "demo recipe")
    resume = not fresh and (out / "record.json").is_file()
    try:
        return pipeline.run(recipe, out=out, resume=resume, force=not resume, observer=observer)
    except ResumeError:  # an earlier demo with other settings: start over
        return pipeline.run(recipe, out=out, force=True, observer=observer)


# ---------------------------------------------------------------------- demo --cascade
CASCADE_DATA = "builtin:digits-manipulated"
CASCADE_SHAPE = "1,1,32,32"
# cheap to precise: a half-width DS-CNN (quantized to INT8) before a tiny ResNet
CASCADE_STAGES = {"fast": ("zoo:dscnn", {"width_mult": 0.5}), "precise": ("zoo:resnet_tiny", {})}


def cascade_stage(
    name: str,
    out: Path,
    epochs: int,
    precision: str,
    observer: Observer | None = None,
    threads: int | None = None,
) -> Path:
    """A cascade stage: the model of ``CASCADE_STAGES[name]`` trained on the built-in
    real-vs-manipulated task (reused when trained before with this config) and exported to
    ONNX at ``precision`` by modelpress; the ONNX file's path."""
    observer = observer or Observer()
    model, kwargs = CASCADE_STAGES[name]
    evaluate = {"threads": threads} if threads else {}
    recipe = build_recipe(
        {
            "model": model,
            "model_kwargs": kwargs,
            "data": CASCADE_DATA,
            "input_shape": CASCADE_SHAPE,
            **({"evaluate": evaluate} if evaluate else {}),
        }
    )
    cfg = TrainConfig(epochs=epochs, lr=3e-3, seed=0)
    checkpoint = out / f"{name}.pt"
    if not _trained(checkpoint, recipe, cfg):
        observer.event("train", f"training the {name} stage, {model} ({epochs} epochs)")
        train_and_save(recipe, cfg, checkpoint, observer)
    run = out / f"export-{name}-{precision}"
    export = build_recipe(
        {
            "model": str(checkpoint.resolve()),
            "data": CASCADE_DATA,
            "input_shape": CASCADE_SHAPE,
            "evaluate": {"repeats": 5, "batch_sizes": [1], **evaluate},
            "steps": [{"type": "export", "format": "onnx", "precision": precision}],
        }
    )
    try:
        record = pipeline.run(export, out=run, resume=True, observer=observer)
    except ResumeError:
        record = pipeline.run(export, out=run, force=True, observer=observer)
    return run / record["artifacts"][-1]["path"]


def run_cascade_demo(
    out: Path,
    *,
    quick: bool = False,
    threads: int | None = None,
    observer: Observer | None = None,
    max_leakage: float = 0.05,
    confidence: float = 0.95,
) -> tuple[Any, dict[str, Any]]:
    """Train a fast and a precise model on builtin:digits-manipulated, quantize the fast one,
    build the cascade into ``out/bundle``; (the cascade, its validation figures)."""
    from modelpress.deploy.cascade import build

    observer = observer or Observer()
    check_output(out, "--out", folder=True)
    out.mkdir(parents=True, exist_ok=True)
    epochs = 4 if quick else 10
    fast = cascade_stage("fast", out, epochs, "int8", observer, threads)
    precise = cascade_stage("precise", out, epochs, "fp32", observer, threads)
    observer.event("cascade", "calibrating and certifying the cascade")
    return build(
        [str(fast), str(precise)],
        CASCADE_DATA,
        out / "bundle",
        max_leakage=max_leakage,
        confidence=confidence,
        input_shape=CASCADE_SHAPE,
        threads=threads,
        names=["fast (dscnn ×0.5, INT8)", "precise (resnet_tiny)"],
    )
