"""``prune``: magnitude (L1) unstructured, gradual, or structured channel pruning, then a
fine-tune (optionally with a teacher, e.g. the unpruned model: ``teacher: input``).

- ``l1-unstructured``: zero the ``ratio`` smallest weights globally, fine-tune with the zeros
  held. Dense kernels do not skip zeros, so the latency stays what it was; the record says so.
- ``gradual``: the same, with sparsity raised from ``sparsity_init`` to ``ratio`` over the first
  epochs on a ``polynomial`` (Zhu & Gupta) or ``exponential`` schedule, then held while the
  model recovers; the best epoch is chosen among those at full sparsity.
- ``structured``: remove ``ratio`` of the channels of every prunable layer group through
  Torch-Pruning's dependency graph (importance magnitude / bn-scale / taylor, ``round_to``
  widths, classifier kept). The model really shrinks: fewer MACs, lower latency.

The result is a self-describing checkpoint (``model.pt``: weights, the architecture and the
pruned layers' new widths), which rebuilds from code without pickled modules.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.registry import register_step
from modelpress.errors import StepError
from modelpress.sources.models import eval_mode
from modelpress.sources.structure import snapshot, structure_changes
from modelpress.steps.prune.structured import prune_channels, resolve_keep
from modelpress.steps.prune.unstructured import GradualMagnitude, OneShot, sparsity_of
from modelpress.steps.shared import resolve_teacher, teacher_loss
from modelpress.steps.trained import TeacherFields, train_in_step
from modelpress.training import (
    PRECISE_BN_SAMPLES,
    Callback,
    checkpoint_metadata,
    evaluate_module,
    recalibrate_batchnorm,
    save_checkpoint,
)

__all__ = ["PruneConfig"]

UNSTRUCTURED_NOTE = (
    "unstructured sparsity ({:.0%} zeros) does not speed up dense kernels: the latency shown "
    "is measured as-is; use method: structured for speed, or compress the zeros for size"
)


class PruneConfig(TeacherFields):
    type: Literal["prune"] = "prune"
    method: Literal["l1-unstructured", "gradual", "structured"] = "structured"
    # structured: fraction of channels removed per layer; otherwise: fraction of weights zeroed
    ratio: float = 0.5
    sparsity_init: float = Field(0.0, ge=0, lt=1)  # gradual
    schedule: Literal["polynomial", "exponential"] = "polynomial"  # gradual
    ramp_epochs: int | None = Field(None, ge=1)  # gradual: epochs to reach `ratio` (default ⅔)
    importance: Literal["magnitude", "bn-scale", "taylor"] = "magnitude"  # structured
    round_to: int | None = Field(None, ge=1)  # structured: widths a multiple of this
    keep: list[str] = Field(default_factory=list)  # structured: modules never pruned
    finetune_epochs: int = Field(3, ge=0)
    alpha: float = Field(0.5, ge=0, le=1)  # with a teacher: weight of the hard-label loss

    @field_validator("ratio")
    @classmethod
    def _ratio_open_interval(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"ratio must be between 0 and 1 (exclusive), got {value}")
        return value

    @model_validator(mode="after")
    def _gradual(self) -> PruneConfig:
        """What gradual pruning needs, said when the recipe is read (it was a failed step after
        the baseline had been measured)."""
        if self.method != "gradual":
            return self
        if self.finetune_epochs < 1:
            raise ValueError("method gradual prunes while training; set finetune_epochs ≥ 1")
        if self.sparsity_init >= self.ratio:
            raise ValueError(
                f"sparsity_init ({self.sparsity_init}) must be below ratio ({self.ratio})"
            )
        return self

    def check_before_run(self, ctx: StepContext, parent: Artifact | None, where: str) -> None:
        """The teacher (``--distill-from``) built as the step builds it, its code trusted, and
        ``keep``'s module names looked up in the input model when it is known (the baseline):
        before the baseline is measured."""
        if self.teacher:
            self.check_teacher(ctx, parent, where)
        module = parent.module if parent is not None else None
        if self.method == "structured" and self.keep and module is not None:
            resolve_keep(where, module, self.keep)

    def default_name(self) -> str:
        return "prune" if self.method == "structured" else f"prune-{self.method}"


def _gradient_batches(ctx: StepContext, n: int = 4, batch: int = 32) -> list[tuple[list, Any]]:
    """A few labelled training batches (Taylor importance)."""
    out = []
    for i, (inputs, labels) in enumerate(ctx.data.train.batches(batch)):
        if i == n or labels is None:
            break
        out.append(([torch.from_numpy(a) for a in inputs], ctx.task.label_tensor(labels)))
    return out


def _callbacks(config: PruneConfig, where: str) -> tuple[list[Callback], int]:
    """The sparsity callback and the first epoch (0-based) eligible as the best one."""
    if config.method == "structured":
        return [], 0
    if config.method == "l1-unstructured":
        return [OneShot(config.ratio)], 0
    ramp = config.ramp_epochs or max(1, math.ceil(config.finetune_epochs * 2 / 3))
    ramp = min(ramp, config.finetune_epochs)
    pruner = GradualMagnitude(config.sparsity_init, config.ratio, ramp, config.schedule)
    return [pruner], ramp - 1


@register_step(PruneConfig)
def _prune(artifact: Artifact, config: PruneConfig, ctx: StepContext) -> Artifact:
    where = config.display_name
    if artifact.module is None:
        raise StepError(f"{where}: the input has no torch module to prune")
    original = artifact.module
    model = copy.deepcopy(original)
    before = snapshot(model)
    details: dict[str, Any] = {"method": config.method, "ratio": config.ratio}
    notes: list[str] = []
    if config.method == "structured":
        facts = prune_channels(
            model,
            ctx.example_inputs(2),
            config.ratio,
            importance=config.importance,
            round_to=config.round_to,
            keep=config.keep,
            num_classes=ctx.data.num_classes,
            task=ctx.task,
            gradient_batches=_gradient_batches(ctx) if config.importance == "taylor" else None,
            loss_fn=_plain_loss(ctx) if config.importance == "taylor" else None,
            where=where,
        )
        notes += facts.pop("notes", [])
        details |= facts
        details["before_finetune"] = _measure_pruned(model, config, ctx)
    callbacks, select_from = _callbacks(config, where)
    if config.method == "gradual":
        details |= {"sparsity_init": config.sparsity_init, "schedule": config.schedule}
    if config.finetune_epochs:
        loss = None
        if config.teacher:
            teacher = resolve_teacher(config, artifact, ctx, where)
            loss = teacher_loss(
                teacher,
                model,
                ctx,
                where,
                temperature=config.temperature,
                hard_weight=config.alpha,
                soft_weight=1 - config.alpha,
            )
            details["teacher"] = artifact.name if config.teacher == "input" else config.teacher
        result = train_in_step(
            model,
            config,
            ctx,
            epochs=config.finetune_epochs,
            folder="finetune",
            loss=loss,
            callbacks=callbacks,
            select_from=select_from,
        )
        details["finetune"] = result.summary()
    else:
        for cb in callbacks:  # one-shot pruning, no fine-tune
            cb.on_epoch_start(0, model)
    model = eval_mode(model)
    if config.method != "structured":
        details["sparsity"] = round(sparsity_of(model), 6)
        notes.append(UNSTRUCTURED_NOTE.format(details["sparsity"]))
    path, rebuild = _save(model, artifact, before, ctx, where, details)
    return artifact.child(
        "torch",
        "fp32",
        path,
        where,
        name="pruned" if config.method == "structured" else "sparse",
        module=model,
        notes=notes,
        details=details,
        rebuild=rebuild,
        retrained=bool(config.finetune_epochs),
    )


def _measure_pruned(model: nn.Module, config: PruneConfig, ctx: StepContext) -> dict[str, float]:
    """The pruned model's primary metric before any fine-tuning, its BatchNorm statistics
    re-estimated first (channels gone upstream shift every later layer's statistics)."""
    inputs = [torch.from_numpy(a) for a in ctx.data.train.inputs]
    recalibrate_batchnorm(model, inputs, config.batch_size, PRECISE_BN_SAMPLES)
    metric = ctx.task.primary
    metrics = evaluate_module(eval_mode(model), ctx.data, ctx.task, ctx.threads)
    return {metric: float(metrics[metric])}


def _plain_loss(ctx: StepContext) -> Any:
    loss = ctx.task.loss()
    return lambda outputs, labels: loss(outputs, labels, [])


def _save(
    model: nn.Module,
    artifact: Artifact,
    before: dict,
    ctx: StepContext,
    where: str,
    details: dict[str, Any],
) -> tuple[Any, dict[str, Any] | None]:
    """A checkpoint that rebuilds from code (with the new widths), or a .pt2 when the input
    model has no code to rebuild it from."""
    if artifact.rebuild is None:
        from modelpress.steps.shared import save_pt2

        _, path = save_pt2(model, ctx, where)
        return path, None
    structure = {k: dict(v) for k, v in (artifact.rebuild.get("structure") or {}).items()}
    for name, attrs in structure_changes(before, model).items():
        structure.setdefault(name, {}).update(attrs)
    rebuild = {**artifact.rebuild, **({"structure": structure} if structure else {})}
    path = ctx.work_dir() / "model.pt"
    save_checkpoint(path, model, checkpoint_metadata(ctx, rebuild, pruned=details))
    return path, rebuild
