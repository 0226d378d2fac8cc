"""Unstructured magnitude pruning: zero the smallest weights, one-shot or gradually while training.

Every Conv and Linear weight takes part, the classifier included: one global L1 threshold ranks
all of them together, so layers with many redundant weights give up more than thin ones, and a
small classifier (few, large weights) keeps nearly all of its own. Shapes never change; the zeros
pay off when the model is compressed on disk or run by a sparse kernel, not in dense latency.

Masks are applied by multiplying weights in place, with no ``torch.nn.utils.prune``
reparametrization: the state dict stays plain (``weight``, not ``weight_orig`` + ``weight_mask``)
and any exporter sees an ordinary model. The price is that a training loop must re-apply the
masks after each optimizer step (``on_step_end``), or momentum and weight decay would revive
pruned weights.

Gradual pruning follows Zhu & Gupta, "To prune, or not to prune" (2017): sparsity rises from
``init`` to ``target`` over the epochs, fast at first and slowly near the end, so the network
recovers from each cut while training goes on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from modelpress.errors import StepError

__all__ = [
    "SCHEDULES",
    "GradualMagnitude",
    "OneShot",
    "apply_masks",
    "global_l1_masks",
    "prunable_weights",
    "sparsity_at",
    "sparsity_of",
]

SCHEDULES = ("polynomial", "exponential")

_PRUNABLE = (nn.Linear, nn.modules.conv._ConvNd)


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv*/Linear module with a weight, classifier included, in ``named_modules`` order."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, _PRUNABLE) and isinstance(module.weight, torch.Tensor)
    ]


def _check_sparsity(where: str, name: str, value: object, *, zero_ok: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not ((value >= 0 if zero_ok else value > 0) and value < 1)
    ):
        bounds = "in [0, 1)" if zero_ok else "between 0 and 1 (exclusive)"
        raise StepError(f"{where}: {name} must be {bounds}, got {value!r}")
    return float(value)


@torch.no_grad()
def global_l1_masks(
    model: nn.Module, sparsity: float, *, where: str = "prune"
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks ``{module name: mask}`` that zero the ``sparsity`` fraction of all
    prunable weights with the smallest |w|, ranked across layers.

    Exactly ``round(sparsity × total)`` weights are dropped; ties (zeros from an earlier cut, for
    one) are broken by position, so the result is deterministic. Weights already at zero rank
    first, so masks from a rising schedule only ever grow.
    """
    sparsity = _check_sparsity(where, "sparsity", sparsity, zero_ok=True)
    layers = prunable_weights(model)
    if not layers:
        return {}
    scores = torch.cat([m.weight.detach().abs().flatten().float().cpu() for _, m in layers])
    keep = torch.ones_like(scores, dtype=torch.bool)
    n_pruned = round(sparsity * scores.numel())
    if n_pruned:
        keep[torch.argsort(scores, stable=True)[:n_pruned]] = False
    masks: dict[str, torch.Tensor] = {}
    offset = 0
    for name, module in layers:
        n = module.weight.numel()
        masks[name] = keep[offset : offset + n].view_as(module.weight).to(module.weight.device)
        offset += n
    return masks


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked-out weights in place (``False`` in a mask means pruned)."""
    for name, mask in masks.items():
        weight = model.get_submodule(name).weight
        if mask.device != weight.device:  # the model moved after the masks were made
            mask = mask.to(weight.device)
        weight.masked_fill_(~mask, 0)


@torch.no_grad()
def sparsity_of(model: nn.Module) -> float:
    """Fraction of exact zeros over all prunable weights (0.0 for a model with none)."""
    layers = prunable_weights(model)
    total = sum(m.weight.numel() for _, m in layers)
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    return zeros / total if total else 0.0


def sparsity_at(
    epoch: int, epochs: int, init: float, target: float, schedule: str, *, where: str = "prune"
) -> float:
    """The sparsity to apply at the start of ``epoch`` (0-based) of ``epochs``.

    With t = epoch and n = epochs - 1, the schedule starts at ``init`` (t = 0) and reaches
    ``target`` at the start of the last epoch (t = n), which then trains at full sparsity:

        polynomial   s_t = s_f + (s_i - s_f) · (1 - t/n)³          (Zhu & Gupta 2017)
        exponential  s_t = 1 - (1 - s_i) · ((1 - s_f) / (1 - s_i))^(t/n)

    Both cut hardest early, while the network has the most epochs left to recover. The
    exponential schedule removes the same fraction of the *remaining* weights each epoch. With
    one epoch (n = 0) the answer is ``target``; epochs past the last stay at ``target``.
    """
    _check_schedule(where, epochs, init, target, schedule)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise StepError(f"{where}: epoch must be an integer >= 0, got {epoch!r}")
    n = epochs - 1
    if n == 0 or epoch >= n:
        return float(target)
    t = epoch / n
    if schedule == "polynomial":
        return target + (init - target) * (1 - t) ** 3
    return 1 - (1 - init) * ((1 - target) / (1 - init)) ** t


def _check_schedule(where: str, epochs: int, init: float, target: float, schedule: str) -> None:
    target = _check_sparsity(where, "target sparsity", target)
    init = _check_sparsity(where, "initial sparsity", init, zero_ok=True)
    if not init < target:
        raise StepError(
            f"{where}: initial sparsity ({init}) must be below the target sparsity ({target})"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise StepError(f"{where}: epochs must be an integer >= 1, got {epochs!r}")
    if schedule not in SCHEDULES:
        raise StepError(f"{where}: unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")


class GradualMagnitude:
    """Training callback: raise sparsity each epoch along a schedule, keep pruned weights at 0.

    ``on_epoch_start`` recomputes global L1 masks at ``sparsity_at(epoch, ...)`` and applies them;
    ``on_step_end`` re-applies them after every optimizer step.
    """

    def __init__(
        self, init: float, target: float, epochs: int, schedule: str, *, where: str = "prune"
    ) -> None:
        _check_schedule(where, epochs, init, target, schedule)
        self.init, self.target, self.epochs, self.schedule = init, target, epochs, schedule
        self.where = where
        self.masks: dict[str, torch.Tensor] = {}

    def on_epoch_start(self, epoch: int, model: nn.Module) -> dict[str, Any]:
        sparsity = sparsity_at(
            epoch, self.epochs, self.init, self.target, self.schedule, where=self.where
        )
        self.masks = global_l1_masks(model, sparsity, where=self.where)
        apply_masks(model, self.masks)
        return {"sparsity": sparsity}

    def on_step_end(self, model: nn.Module) -> None:
        apply_masks(model, self.masks)


class OneShot:
    """Training callback with the same interface, for one-shot pruning: masks at ``sparsity``
    are computed once, from the weights the model has at the first ``on_epoch_start``, and held
    fixed while training fine-tunes the surviving weights."""

    def __init__(self, sparsity: float, *, where: str = "prune") -> None:
        self.sparsity = _check_sparsity(where, "sparsity", sparsity)
        self.where = where
        self.masks: dict[str, torch.Tensor] | None = None

    def on_epoch_start(self, epoch: int, model: nn.Module) -> dict[str, Any]:
        if self.masks is None:
            self.masks = global_l1_masks(model, self.sparsity, where=self.where)
        apply_masks(model, self.masks)
        return {"sparsity": self.sparsity}

    def on_step_end(self, model: nn.Module) -> None:
        if self.masks is not None:
            apply_masks(model, self.masks)
