"""The training loop every technique shares: the demo's baseline, distillation, pruning
fine-tunes and QAT. A custom ``loss_fn`` gets outputs, labels and inputs; a loss that is an
``nn.Module`` with parameters (distillation's feature projections) trains alongside the model.
``callbacks`` hook into each epoch's start and each optimizer step (pruning schedules, masks).

A non-finite loss or gradient never reaches the weights: the batch is skipped, the weights go
back to the last finite state, the learning rate is lowered, and after ``max_bad_batches`` such
batches training stops with :class:`TrainingDiverged` instead of writing a NaN model.

    config.py      TrainConfig, TrainResult, Callback, TrainingDiverged
    loop.py        fit: the epoch loop
    optim.py       optimizer, scheduler, SAM, recovery from a non-finite batch
    batchnorm.py   precise BatchNorm
    evaluation.py  the validation metric an epoch is judged by
    resume.py      last.pt: resuming an interrupted training
    checkpoint.py  the checkpoint format (weights + how to rebuild the model)

``modelpress train`` (build the run's context, fit, write the checkpoint) is
``engine.train.train_and_save``: it needs the engine's context.
"""

from __future__ import annotations

from modelpress.training.batchnorm import recalibrate_batchnorm
from modelpress.training.checkpoint import checkpoint_metadata, checkpoints_dir, save_checkpoint
from modelpress.training.config import (
    PRECISE_BN_SAMPLES,
    Callback,
    LossFn,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
)
from modelpress.training.evaluation import evaluate_module
from modelpress.training.loop import fit

__all__ = [
    "PRECISE_BN_SAMPLES",
    "Callback",
    "LossFn",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "checkpoint_metadata",
    "checkpoints_dir",
    "evaluate_module",
    "fit",
    "recalibrate_batchnorm",
    "save_checkpoint",
]
