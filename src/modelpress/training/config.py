"""What a training is asked (``TrainConfig``) and what it answers (``TrainResult``), the hooks
it calls (``Callback``) and how it fails (``TrainingDiverged``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from modelpress.errors import ModelpressError

if TYPE_CHECKING:
    from modelpress.tasks.base import Chance

LossFn = Callable[[torch.Tensor, torch.Tensor, list[torch.Tensor]], torch.Tensor]


PRECISE_BN_SAMPLES = 1024  # enough for stable per-channel statistics, cheap next to an epoch


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    weight_decay: float = Field(1e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    scheduler: Literal["cosine", "step", "plateau", "none"] = "cosine"
    step_size: int = Field(5, ge=1)  # step scheduler
    gamma: float = Field(0.5, gt=0, le=1)  # step and plateau schedulers
    early_stopping: int | None = Field(None, ge=1)  # patience in epochs without improvement
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    grad_clip: float | None = Field(None, gt=0)
    sam: bool = False  # sharpness-aware minimization (two forward/backward passes per batch)
    sam_rho: float = Field(0.05, gt=0)
    max_bad_batches: int = Field(5, ge=1)  # non-finite batches tolerated before stopping
    nan_lr_factor: float = Field(0.5, gt=0, lt=1)  # lr multiplier after a non-finite batch
    # BatchNorm statistics re-estimated over up to this many training samples after each epoch
    # (0: keep the running averages); see recalibrate_batchnorm
    precise_bn: int = Field(PRECISE_BN_SAMPLES, ge=0)
    # start normalization layers whose weights begin near 0 at γ=1, β=0, and a TensorFlow-style
    # BatchNorm momentum m at 1 - m (training/norm_init.py: transformers' EfficientNet)
    reset_norm: bool = False
    seed: int = 0


class TrainingDiverged(ModelpressError):
    """Training produced non-finite losses or gradients too often to go on."""


class Callback:
    """Hooks into :func:`fit`; the defaults do nothing."""

    def on_epoch_start(self, epoch: int, model: nn.Module) -> dict[str, Any]:
        """Called before epoch ``epoch`` (0-based); what it returns joins that epoch's history."""
        return {}

    def on_step_end(self, model: nn.Module) -> None:
        """Called after every optimizer step."""


@dataclass
class TrainResult:
    metric: str
    best_metric: float
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from: int | None = None
    bad_batches: int = 0  # non-finite batches skipped
    chance: Chance | None = None  # the primary metric at chance on the validation labels
    # what the model's normalization layers started as, when that stops it learning (the
    # problems, in words), and whether --reset-norm fixed them
    norm_problems: list[str] = field(default_factory=list)
    norm_reset: bool = False

    @property
    def did_not_learn(self) -> bool:
        """Whether the best validation metric of every epoch is still at chance level."""
        return self.chance is not None and self.chance.reached(
            self.best_metric if math.isfinite(self.best_metric) else None
        )

    def verdict(self) -> str | None:
        """What to say when it did not learn ("did_not_learn: …", best validation metric vs
        chance), or None."""
        if not self.did_not_learn or self.chance is None:
            return None
        best = (
            f"{self.best_metric:.4f} (epoch {self.best_epoch} of {len(self.history)})"
            if math.isfinite(self.best_metric)
            else "not measured"
        )
        return (
            f"did_not_learn: best validation {self.metric} {best} is at chance level, "
            f"{self.chance.says()}"
        )

    def summary(self) -> dict[str, Any]:
        """What a step records of its training."""
        out = {
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            self.metric: self.best_metric,
            "history": self.history,
        }
        if self.chance is not None:
            out |= {"chance": self.chance.to_dict(), "did_not_learn": self.did_not_learn}
        if self.norm_problems:
            out["norm_init"] = {"problems": self.norm_problems, "reset": self.norm_reset}
        return out
