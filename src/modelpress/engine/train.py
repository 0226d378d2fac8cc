"""``modelpress train``: train a recipe's model on its data and write a self-describing
checkpoint, with the run's context (the same model, data and task resolution as a run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from torch import nn

from modelpress.core.observer import Observer
from modelpress.core.process import torch_threads
from modelpress.core.rundir import stable_hash
from modelpress.engine.context import baseline_reads, build_context
from modelpress.training.checkpoint import checkpoint_metadata, checkpoints_dir, save_checkpoint
from modelpress.training.config import TrainConfig, TrainResult
from modelpress.training.evaluation import evaluate_module
from modelpress.training.loop import fit


def train_and_save(
    recipe: Any, cfg: TrainConfig, out: Path, observer: Observer | None = None
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the recipe's model on its data and write a self-describing checkpoint to ``out``.

    Per-epoch checkpoints go to ``OUT_STEM.checkpoints/``; a rerun with the same config,
    model files, data and initial weights resumes.
    """
    ctx, baseline = build_context(recipe, observer)
    module = cast(nn.Module, baseline.module)  # a torch baseline always holds its module
    # a checkpoint resumes only for the same model files, data and initial weights, not only
    # the same arguments: an edited model file or data set trains from the start
    reads = baseline_reads(ctx, baseline)
    with torch_threads(ctx.threads):  # the recipe's threads for this training, then put back
        result = fit(
            module,
            ctx.data,
            ctx.task,
            cfg,
            observer=observer,
            threads=ctx.threads,
            checkpoint_dir=checkpoints_dir(out),
            resume_key={"identity": recipe.identity(), "reads": reads},
        )
    metrics = evaluate_module(module, ctx.data, ctx.task, ctx.threads)
    spec = ctx.model_spec
    meta = checkpoint_metadata(
        ctx,
        {"model": spec.architecture, "model_kwargs": spec.kwargs},
        data=recipe.data.model_dump(mode="json"),
        train=cfg.model_dump(),
        train_hash=stable_hash({"train": cfg.model_dump(), "identity": recipe.identity()}),
        metrics={k: v for k, v in metrics.items() if isinstance(v, float | int)},
        history=result.history,
        **({"chance": result.chance.to_dict()} if result.chance else {}),
        did_not_learn=result.did_not_learn,
    )
    save_checkpoint(out, module, meta)
    return result, metrics
