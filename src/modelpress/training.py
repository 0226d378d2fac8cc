"""The training loop every technique shares: the demo's baseline, distillation, pruning
fine-tunes and QAT. A custom ``loss_fn`` gets outputs, labels and inputs; a loss that is an
``nn.Module`` with parameters (distillation's feature projections) trains alongside the model.
``callbacks`` hook into each epoch's start and each optimizer step (pruning schedules, masks).

Per epoch: shuffled mini-batches (seeded), validation metric, scheduler step, a checkpoint that
a rerun with the same config resumes from, early stopping on the validation metric, and the best
weights restored at the end. Model selection uses the validation split, as early stopping does.

A non-finite loss or gradient never reaches the weights: the batch is skipped, the weights go
back to the last finite state, the learning rate is lowered, and after ``max_bad_batches`` such
batches training stops with :class:`TrainingDiverged` instead of writing a NaN model.
"""

from __future__ import annotations

import copy
import functools
import io
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.observer import Observer
from modelpress.core.process import seeded, torch_threads
from modelpress.core.rundir import stable_hash, write_bytes_atomic
from modelpress.errors import ModelpressError, first_line
from modelpress.runtimes.eager import TorchRuntime
from modelpress.sources.data import Dataset

if TYPE_CHECKING:
    from modelpress.tasks.base import Chance, Task

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
        return out


def _optimizer(
    model: nn.Module, cfg: TrainConfig, extra: list[nn.Parameter]
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad] + extra
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=cfg.gamma, patience=2
        )
    return None


def evaluate_module(model: nn.Module, data: Dataset, task: Task, threads: int) -> dict[str, Any]:
    """Validation metrics of a torch module, through the runtime and metrics any artifact uses."""
    art = Artifact("training", "torch", data.input_specs(), module=model)
    runtime = TorchRuntime(art, threads)
    try:
        outputs = runtime.predict_all(data.validation.inputs, 256)
    finally:
        runtime.close()
    return task.metrics(outputs, data.validation.labels)


def _save(path: Path, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


class _Unpacked(nn.Module):
    """``model`` called with the list of inputs ``swa_utils.update_bn`` hands over as one."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: list[torch.Tensor]) -> Any:
        return self.model(*inputs)


def recalibrate_batchnorm(
    model: nn.Module, inputs: list[torch.Tensor], batch_size: int, max_samples: int
) -> bool:
    """Precise BatchNorm (Wu & Johnson, "Rethinking BatchNorm", 2021): replace the running
    mean/var, an exponential average over weights that kept changing, with the plain average
    over up to ``max_samples`` training samples under the current weights. After a short
    schedule (few hundred samples) the running averages still sit near their initial values and
    an eval-mode model scores at chance while its train-mode twin does fine. Returns whether the
    model had BatchNorm to recalibrate."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return False
    n = min(len(inputs[0]), max_samples)
    n = n - n % batch_size if n >= batch_size else n  # equal batches: each counts the same
    if n < 2:
        return False
    batches = ([[a[i : i + batch_size] for a in inputs]] for i in range(0, n, batch_size))
    with torch.no_grad():
        # update_bn puts back the wrapper's mode: give it the model's
        torch.optim.swa_utils.update_bn(batches, _Unpacked(model).train(model.training))
    return True


def _finite_grads(params: list[nn.Parameter]) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    return all(bool(torch.isfinite(g).all()) for g in grads)


def _sam_step(
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
    x = [torch.from_numpy(a) for a in data.train.inputs]
    y = task.label_tensor(data.train.labels)
    opt = _optimizer(model, cfg, extra)
    params = [p for group in opt.param_groups for p in group["params"]]
    sched = _scheduler(opt, cfg)
    result = TrainResult(metric, -math.inf, 0)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    start_epoch, since_best, bad = 0, 0, 0
    ckpt = checkpoint_dir / "last.pt" if checkpoint_dir else None
    cfg_hash = stable_hash(
        cfg.model_dump() if resume_key is None else [cfg.model_dump(), resume_key]
    )
    state = _resume(ckpt, cfg_hash, model, loss_module, opt, sched, observer)
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
        good = _snapshot(model, loss_module)  # the last finite weights (a bad batch returns here)
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
                    if cfg.sam and _finite_grads(params):
                        loss = _sam_step(params, cfg.sam_rho, closure)
                    finite = bool(torch.isfinite(loss)) and _finite_grads(params)
                if not finite:
                    bad += 1
                    _recover(model, loss_module, good, opt, cfg, bad, epoch, i, loss, observer)
                    advance()
                    continue
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                for cb in callbacks:
                    cb.on_step_end(model)
                if (i + 1) % 8 == 0:  # refresh the finite snapshot now and then (cheap enough)
                    good = _snapshot(model, loss_module)
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
            _save_resumable(
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


# ------------------------------------------------------------------ resumable checkpoints
# last.pt holds tensors and plain data only, so it is read with weights_only=True: a file put in
# the checkpoint folder (or a run directory handed over) can never run code. One that does not
# read, or does not fit the model, is reported and training starts over.
_COUNTS = ("epoch", "since_best", "best_epoch", "bad_batches")


def _storable(obj: Any) -> Any:
    """``obj`` in the types ``torch.load(weights_only=True)`` reads back (tensors, numbers,
    strings, None, dicts, lists, tuples); a TypeError names anything else."""
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    for plain in (bool, int, float, str):  # subclasses (enums, ...) as their plain value
        if isinstance(obj, plain):
            return plain(obj)
    if type(obj) in (dict, OrderedDict):
        out = type(obj)((k, _storable(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a state dict's module versions
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if type(obj) in (list, tuple):
        return type(obj)(_storable(v) for v in obj)
    raise TypeError(f"a {type(obj).__name__} cannot be stored with weights_only")


def _save_resumable(path: Path, observer: Observer, payload: dict[str, Any]) -> None:
    try:
        payload = _storable(payload)
    except TypeError as e:  # training goes on; only resuming it is lost
        observer.event("warning", f"{path}: not written ({e}); an interrupted run starts over")
        return
    _save(path, payload)


def _resume(
    ckpt: Path | None,
    cfg_hash: str,
    model: nn.Module,
    loss_module: nn.Module | None,
    opt: torch.optim.Optimizer,
    sched: Any,
    observer: Observer,
) -> dict[str, Any] | None:
    """The state of ``ckpt`` (written under ``cfg_hash``) loaded into model, loss, optimizer and
    scheduler, or None with all of them as they were: no checkpoint, another config's, or a
    file that does not read with weights_only or does not fit (reported, never executed)."""
    if ckpt is None or not ckpt.is_file():
        return None
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        observer.event(
            "warning",
            f"{ckpt}: not a readable training checkpoint ({first_line(e)}); training starts over",
        )
        return None
    if not isinstance(state, dict) or state.get("config_hash") != cfg_hash:
        return None  # another config's checkpoint: never resumed
    mods = [model] + ([loss_module] if loss_module is not None else [])
    weights, opt_state = _snapshot(model, loss_module), copy.deepcopy(opt.state_dict())
    sched_state = copy.deepcopy(sched.state_dict()) if sched is not None else None
    try:
        model.load_state_dict(state["model"])
        if loss_module is not None and state.get("loss"):
            loss_module.load_state_dict(state["loss"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler"):
            sched.load_state_dict(state["scheduler"])
        state.setdefault("bad_batches", 0)
        own = model.state_dict()
        best = state["best_state"]
        if not isinstance(best, dict) or {k: v.shape for k, v in best.items()} != {
            k: v.shape for k, v in own.items()
        }:
            raise ValueError("best_state does not match the model")
        if not all(isinstance(state[k], int) and state[k] >= 0 for k in _COUNTS):
            raise ValueError(f"{', '.join(_COUNTS)} must be counts")
        if not isinstance(state["best_metric"], float | int) or not isinstance(
            state["history"], list
        ):
            raise ValueError("best_metric must be a number, history a list")
    except Exception as e:
        for m, saved in zip(mods, weights, strict=True):
            m.load_state_dict(saved)
        opt.load_state_dict(opt_state)
        if sched is not None:
            sched.load_state_dict(sched_state)
        observer.event(
            "warning",
            f"{ckpt}: a training checkpoint that does not fit this training "
            f"({first_line(e)}); training starts over",
        )
        return None
    return state


def _snapshot(model: nn.Module, loss_module: nn.Module | None) -> list[dict[str, torch.Tensor]]:
    mods = [model] + ([loss_module] if loss_module is not None else [])
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in mods]


def _recover(
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


def save_checkpoint(path: Path, model: nn.Module, metadata: dict[str, Any]) -> None:
    """A weights file that reloads by itself: state dict + what is needed to rebuild the model.

    Loadable with ``torch.load(weights_only=True)``; ``modelpress ... path.pt`` rebuilds it.
    """
    from modelpress.sources.models import CHECKPOINT_KEY

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _save(path, {"state_dict": state, CHECKPOINT_KEY: _plain(metadata)})


def _plain(obj: Any) -> Any:
    """Only plain types in checkpoint metadata, so weights_only loading accepts it."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def checkpoints_dir(out: Path) -> Path:
    """Where ``train_and_save`` keeps the per-epoch checkpoints of a training written to ``out``."""
    return out.parent / f"{out.stem}.checkpoints"


def train_and_save(
    recipe: Any, cfg: TrainConfig, out: Path, observer: Observer | None = None
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the recipe's model on its data and write a self-describing checkpoint to ``out``.

    Per-epoch checkpoints go to ``OUT_STEM.checkpoints/``; a rerun with the same config,
    model files, data and initial weights resumes.
    """
    from modelpress.engine.context import baseline_reads, build_context

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


def checkpoint_metadata(ctx: Any, rebuild: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What a modelpress checkpoint records beside the weights: how to rebuild the model
    (``Artifact.rebuild``: source, kwargs, pruning structure) and what it was trained for."""
    from modelpress.core.inputs import InputSpec, format_input_shape

    return {
        "format": 1,
        **rebuild,
        "input_shape": format_input_shape([InputSpec(s.name, s.shape) for s in ctx.input_specs]),
        "task": ctx.task.name,
        "num_classes": ctx.data.num_classes,
        "class_names": ctx.data.class_names,
        **extra,
    }
