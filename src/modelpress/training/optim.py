"""The pieces of one optimizer step: optimizer and scheduler from the config, SAM's second
pass, and what happens after a non-finite batch (weights back, lower lr, or stop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from modelpress.core.observer import Observer
from modelpress.training.config import TrainConfig, TrainingDiverged


def optimizer(
    model: nn.Module, cfg: TrainConfig, extra: list[nn.Parameter]
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad] + extra
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=cfg.gamma, patience=2
        )
    return None


def finite_grads(params: list[nn.Parameter]) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    return all(bool(torch.isfinite(g).all()) for g in grads)


def sam_step(
    params: list[nn.Parameter], rho: float, closure: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """SAM (Foret et al. 2021): climb to w + ρ·g/‖g‖, take the gradient there, come back.

    Leaves that gradient in ``.grad`` for the base optimizer's step; returns the second loss."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.norm(torch.stack([g.norm(2) for g in grads]), 2) if grads else torch.tensor(0.0)
    scale = rho / (norm + 1e-12)
    shifts = []
    with torch.no_grad():
        for p in params:
            e = p.grad * scale if p.grad is not None else None
            if e is not None:
                p.add_(e)
            shifts.append(e)
    for p in params:
        p.grad = None
    loss = closure()
    loss.backward()
    with torch.no_grad():
        for p, e in zip(params, shifts, strict=True):
            if e is not None:
                p.sub_(e)
    return loss


def snapshot(model: nn.Module, loss_module: nn.Module | None) -> list[dict[str, torch.Tensor]]:
    mods = [model] + ([loss_module] if loss_module is not None else [])
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in mods]


def recover(
    model: nn.Module,
    loss_module: nn.Module | None,
    good: list[dict[str, torch.Tensor]],
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    bad: int,
    epoch: int,
    batch: int,
    loss: torch.Tensor,
    observer: Observer,
) -> None:
    """After a non-finite batch: back to the last finite weights, lower lr, or stop."""
    opt.zero_grad(set_to_none=True)
    what = f"loss {loss.item():.4g}" if not torch.isfinite(loss) else "non-finite gradients"
    lr = opt.param_groups[0]["lr"]
    mods = [model] + ([loss_module] if loss_module is not None else [])
    for m, state in zip(mods, good, strict=True):  # BatchNorm statistics saw the batch too
        m.load_state_dict(state)
    if bad >= cfg.max_bad_batches:
        raise TrainingDiverged(
            f"training diverged: {bad} non-finite batches (last: epoch {epoch + 1}, batch "
            f"{batch + 1}, {what}) even after lowering the learning rate to {lr:.3g}; start "
            f"from a lower lr (now {cfg.lr}), set grad_clip, or check the data for NaN/Inf"
        )
    for group in opt.param_groups:
        group["lr"] *= cfg.nan_lr_factor
    for state in opt.state.values():  # Adam moments may hold the poison too
        for v in state.values():
            if isinstance(v, torch.Tensor) and not bool(torch.isfinite(v).all()):
                v.zero_()
    observer.event(
        "warning",
        f"epoch {epoch + 1}, batch {batch + 1}: {what}; batch skipped, weights restored, "
        f"lr lowered to {lr * cfg.nan_lr_factor:.3g} ({bad}/{cfg.max_bad_batches})",
    )
