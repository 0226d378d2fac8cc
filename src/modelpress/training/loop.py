"""``fit``: the epoch loop every technique trains with.

Per epoch: shuffled mini-batches (seeded), validation metric, scheduler step, a checkpoint that
a rerun with the same config resumes from (``resume.py``), early stopping on the validation
metric, and the best weights restored at the end. Model selection uses the validation split, as
early stopping does.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from modelpress.core.observer import Observer
from modelpress.core.process import seeded, torch_threads
from modelpress.core.rundir import stable_hash
from modelpress.errors import ModelpressError
from modelpress.sources.data import Dataset
from modelpress.training.batchnorm import recalibrate_batchnorm
from modelpress.training.config import Callback, LossFn, TrainConfig, TrainResult
from modelpress.training.evaluation import evaluate_module
from modelpress.training.norm_init import inspect_norms, reset_norms
from modelpress.training.optim import (
    finite_grads,
    optimizer,
    recover,
    sam_step,
    scheduler,
    snapshot,
)
from modelpress.training.resume import load_state, save_state

if TYPE_CHECKING:
    from modelpress.tasks.base import Task


def _on_threads(train: Callable[..., TrainResult]) -> Callable[..., TrainResult]:
    """``fit`` trains on its ``threads`` (the recipe's), not on whatever torch thread count a
    runtime set last (after a resume that made the first epoch 30-55x slower), and leaves the
    count as it found it."""

    @functools.wraps(train)
    def wrapper(*args: Any, threads: int | None = None, **kwargs: Any) -> TrainResult:
        with torch_threads(threads or torch.get_num_threads()):
            return train(*args, threads=threads, **kwargs)

    return wrapper


@_on_threads
def fit(model: nn.Module, data: Dataset, task: Task, cfg: TrainConfig, **kw: Any) -> TrainResult:
    """Train ``model`` in place on ``data.train``; keep the weights of the best validation epoch
    from epoch ``select_from`` (0-based) on (a gradual pruning schedule's full-sparsity epochs).

    A checkpoint in ``checkpoint_dir`` is resumed only when it was written with the same
    config and ``resume_key`` (what else shapes the run: a step's whole config, say). Training
    is seeded by ``cfg.seed`` and leaves the caller's torch RNG stream as it found it."""
    with seeded(cfg.seed):
        return _fit(model, data, task, cfg, **kw)


def _check_norms(
    model: nn.Module, cfg: TrainConfig, observer: Observer, result: TrainResult
) -> None:
    """Normalization layers a model cannot learn from (training/norm_init.py): reset them when
    the config says so, else warn before the first epoch (the did_not_learn hint repeats it)."""
    found = reset_norms(model) if cfg.reset_norm else inspect_norms(model)
    result.norm_problems, result.norm_reset = found.problems(), cfg.reset_norm
    for problem in result.norm_problems:
        if cfg.reset_norm:
            observer.event("norm_reset", f"reset: {problem.split(';')[0]}")
        else:
            observer.event("warning", problem)


def _fit(
    model: nn.Module,
    data: Dataset,
    task: Task,
    cfg: TrainConfig,
    *,
    observer: Observer | None = None,
    checkpoint_dir: Path | None = None,
    loss_fn: LossFn | None = None,
    callbacks: list[Callback] | None = None,
    select_from: int = 0,
    resume_key: Any = None,
    threads: int | None = None,
) -> TrainResult:
    if not task.needs_labels or data.train.labels is None:
        raise ModelpressError(f"{data.source}: training needs labelled data (task {task.name})")
    observer = observer or Observer()
    threads = threads or torch.get_num_threads()
    loss_fn = loss_fn or task.loss(cfg.label_smoothing)
    callbacks = callbacks or []
    # a loss with parameters (feature projections) trains with the model and resumes with it
    loss_module = loss_fn if isinstance(loss_fn, nn.Module) else None
    extra = [p for p in loss_module.parameters() if p.requires_grad] if loss_module else []
    metric = task.primary
    torch.manual_seed(cfg.seed)
    result = TrainResult(metric, -math.inf, 0)
    _check_norms(model, cfg, observer, result)
    x = [torch.from_numpy(a) for a in data.train.inputs]
    y = task.label_tensor(data.train.labels)
    opt = optimizer(model, cfg, extra)
    params = [p for group in opt.param_groups for p in group["params"]]
    sched = scheduler(opt, cfg)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    start_epoch, since_best, bad = 0, 0, 0
    ckpt = checkpoint_dir / "last.pt" if checkpoint_dir else None
    cfg_hash = stable_hash(
        cfg.model_dump() if resume_key is None else [cfg.model_dump(), resume_key]
    )
    state = load_state(ckpt, cfg_hash, model, loss_module, opt, sched, observer)
    if state is not None:
        best_state, since_best = state["best_state"], state["since_best"]
        result.history, result.best_metric = state["history"], state["best_metric"]
        result.best_epoch, bad = state["best_epoch"], state["bad_batches"]
        start_epoch = result.resumed_from = state["epoch"]
        observer.event("resume", f"training resumed after epoch {start_epoch}")
    n = len(y)
    steps = math.ceil(n / cfg.batch_size)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        facts: dict[str, Any] = {}
        for cb in callbacks:
            facts |= cb.on_epoch_start(epoch, model)
        model.train()
        good = snapshot(model, loss_module)  # the last finite weights (a bad batch returns here)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        total, seen = 0.0, 0
        with observer.progress(f"epoch {epoch + 1}/{cfg.epochs}", steps) as advance:
            for i in range(steps):
                idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                if len(idx) < 2 and steps > 1:  # BatchNorm cannot train on one sample
                    advance()
                    continue
                inputs = [a[idx] for a in x]

                def closure(inputs: list[torch.Tensor] = inputs, idx: torch.Tensor = idx) -> Any:
                    outputs = task.train_outputs(model(*inputs))
                    return loss_fn(outputs, task.label_batch(y, idx), inputs)

                opt.zero_grad(set_to_none=True)
                loss = closure()
                finite = bool(torch.isfinite(loss))
                if finite:
                    loss.backward()
                    if cfg.sam and finite_grads(params):
                        loss = sam_step(params, cfg.sam_rho, closure)
                    finite = bool(torch.isfinite(loss)) and finite_grads(params)
                if not finite:
                    bad += 1
                    recover(model, loss_module, good, opt, cfg, bad, epoch, i, loss, observer)
                    advance()
                    continue
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                for cb in callbacks:
                    cb.on_step_end(model)
                if (i + 1) % 8 == 0:  # refresh the finite snapshot now and then (cheap enough)
                    good = snapshot(model, loss_module)
                total += loss.item() * len(idx)
                seen += len(idx)
                advance(loss=loss.item())
        if cfg.precise_bn:
            recalibrate_batchnorm(model, x, cfg.batch_size, cfg.precise_bn)
        model.eval()
        value = float(evaluate_module(model, data, task, threads)[metric])
        lr = opt.param_groups[0]["lr"]
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(value)
        elif sched is not None:
            sched.step()
        improved = value > result.best_metric and epoch >= select_from
        if improved:
            result.best_metric, result.best_epoch, since_best = value, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        result.history.append(
            {
                "epoch": epoch + 1,
                "loss": total / max(seen, 1),
                metric: value,
                "lr": lr,
                **facts,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        observer.event(
            "epoch",
            f"epoch {epoch + 1}: loss {total / max(seen, 1):.4f}, {metric} {value:.4f}",
            **result.history[-1],
        )
        if ckpt is not None:
            save_state(
                ckpt,
                observer,
                {
                    "config_hash": cfg_hash,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "loss": loss_module.state_dict() if loss_module is not None else None,
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "best_state": best_state,
                    "since_best": since_best,
                    "history": result.history,
                    "best_metric": result.best_metric,
                    "best_epoch": result.best_epoch,
                    "bad_batches": bad,
                },
            )
        if cfg.early_stopping and since_best >= cfg.early_stopping:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    model.eval()
    result.bad_batches = bad
    result.chance = task.chance(data.validation.labels)  # did_not_learn is judged by it
    return result
