"""What the steps that train (distill, prune, qat) share: their training fields, an optional
teacher, and one way to run the shared training loop inside a step (the step's folder for
per-epoch checkpoints, resumed only under the same step config; the run's threads and observer).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.registry import StepConfig, Takes
from modelpress.errors import ModelpressError, StepError
from modelpress.training import Callback, LossFn, TrainConfig, TrainResult, fit


class TrainingFields(StepConfig):
    """Optimizer settings of a training step; each step sets its own epochs (and lr default)."""

    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    scheduler: Literal["cosine", "plateau", "step", "none"] = "cosine"
    early_stopping: int | None = Field(None, ge=1)  # patience in epochs
    sam: bool = False
    seed: int = 0
    # true: normalization layers that start near 0 begin at γ=1 (training/norm_init.py); None
    # (not false) by default, so the node keys of steps written before stay as they were
    reset_norm: bool | None = None

    def train_config(self, epochs: int, lr: float | None = None) -> TrainConfig:
        return TrainConfig(
            epochs=epochs,
            lr=lr or self.lr,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            early_stopping=self.early_stopping,
            sam=self.sam,
            seed=self.seed,
            reset_norm=bool(self.reset_norm),
        )


class TeacherFields(TrainingFields):
    """Naming a teacher: ``input`` (the step's input model) or any model source."""

    teacher: str | None = None
    teacher_kwargs: dict[str, Any] = Field(default_factory=dict)
    teacher_weights: str | None = None
    temperature: float = Field(4.0, gt=0)

    def makes(self) -> Takes:
        return Takes("torch", ("fp32",))  # a retrained torch model (distill, prune)

    def check_teacher(
        self, ctx: StepContext, parent: Artifact | None, where: str
    ) -> nn.Module | None:
        """Before the baseline is measured: the teacher a config names is built (its file
        there, its code trusted, its arguments and weights taken, one forward run), as the
        step will build it. The input model for ``teacher: input`` when the input is known
        (``parent``, the baseline); None when it is not."""
        if self.teacher is None or self.teacher == "input":
            return parent.module if parent is not None else None
        with named(where, "teacher"):
            module, _ = ctx.load_model(
                self.teacher, self.teacher_kwargs, self.teacher_weights, f"{where} (teacher)"
            )
        return module


@contextmanager
def named(where: str, role: str) -> Iterator[None]:
    """A model source's error, said of the step and the role it plays there."""
    try:
        yield
    except ModelpressError as e:
        raise type(e)(f"{where} ({role}): {e}") from None


def train_in_step(
    model: nn.Module,
    config: TrainingFields,
    ctx: StepContext,
    *,
    epochs: int,
    folder: str,
    loss: LossFn | None = None,
    callbacks: list[Callback] | None = None,
    select_from: int = 0,
    lr: float | None = None,
) -> TrainResult:
    """``fit`` for a step: checkpoints in ``STEP_DIR/folder``, keyed by the whole step config;
    past ``ctx.deadline`` (a search's time budget) the step stops at the next epoch."""
    if ctx.deadline is not None:
        callbacks = [*(callbacks or []), _Deadline(ctx.deadline, epochs, folder)]
    return fit(
        model,
        ctx.data,
        ctx.task,
        config.train_config(epochs, lr),
        observer=ctx.observer,
        checkpoint_dir=ctx.work_dir() / folder,
        loss_fn=loss,
        callbacks=callbacks,
        select_from=select_from,
        resume_key=config.to_dict(),
        threads=ctx.threads,
    )


class _Deadline(Callback):
    """Stops a training step that would run past a search's time budget (at an epoch start:
    its checkpoint stays, so a resumed search continues it)."""

    def __init__(self, deadline: float, epochs: int, where: str) -> None:
        self.deadline, self.epochs, self.where = deadline, epochs, where

    def on_epoch_start(self, epoch: int, model: nn.Module) -> dict[str, Any]:
        import time

        if epoch > 0 and time.monotonic() >= self.deadline:
            raise StepError(
                f"{self.where}: stopped at epoch {epoch} of {self.epochs}: the search's time "
                "budget ran out (--resume continues it with more --budget)"
            )
        return {}
