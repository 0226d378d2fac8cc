"""The training loop every technique shares: the demo's baseline now; distillation, pruning
fine-tunes and QAT later, through ``loss_fn`` (a custom loss gets outputs, labels and inputs).

Per epoch: shuffled mini-batches (seeded), validation metric, scheduler step, a checkpoint that
a rerun with the same config resumes from, early stopping on the validation metric, and the best
weights restored at the end. Model selection uses the validation split, as early stopping does.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.observer import Observer
from modelpress.core.rundir import stable_hash, write_bytes_atomic
from modelpress.errors import ModelpressError
from modelpress.evaluate.metrics import PRIMARY, compute_metrics
from modelpress.runtimes.eager import TorchRuntime
from modelpress.sources.data import Dataset
from modelpress.sources.models import first_tensor

LossFn = Callable[[torch.Tensor, torch.Tensor, list[torch.Tensor]], torch.Tensor]


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
    seed: int = 0


@dataclass
class TrainResult:
    metric: str
    best_metric: float
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from: int | None = None


def default_loss(task: str, label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy for classes; BCE-with-logits for a one-logit binary head."""
    ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    bce = nn.BCEWithLogitsLoss()

    def loss(
        outputs: torch.Tensor, labels: torch.Tensor, inputs: list[torch.Tensor]
    ) -> torch.Tensor:
        if task == "binary" and outputs.reshape(len(outputs), -1).shape[1] == 1:
            return bce(outputs.reshape(-1), labels.float())
        return ce(outputs.reshape(len(outputs), -1), labels)

    return loss


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
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


def evaluate_module(model: nn.Module, data: Dataset, task: str, threads: int) -> dict[str, Any]:
    """Validation metrics of a torch module, through the runtime and metrics any artifact uses."""
    art = Artifact("training", "torch", data.input_specs(), module=model)
    outputs = TorchRuntime(art, threads).predict(data.validation.inputs, 256)
    return compute_metrics(task, outputs, data.validation.labels)


def _save(path: Path, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def fit(
    model: nn.Module,
    data: Dataset,
    task: str,
    cfg: TrainConfig,
    *,
    observer: Observer | None = None,
    checkpoint_dir: Path | None = None,
    loss_fn: LossFn | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data.train``; keep the weights of the best validation epoch."""
    if task == "fidelity" or data.train.labels is None:
        raise ModelpressError(f"{data.source}: training needs labelled data (task {task})")
    observer = observer or Observer()
    threads = threads or torch.get_num_threads()
    loss_fn = loss_fn or default_loss(task, cfg.label_smoothing)
    metric = PRIMARY[task]
    torch.manual_seed(cfg.seed)
    x = [torch.from_numpy(a) for a in data.train.inputs]
    y = torch.from_numpy(data.train.labels)
    opt, sched = _optimizer(model, cfg), None
    sched = _scheduler(opt, cfg)
    result = TrainResult(metric, -math.inf, 0)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    start_epoch, since_best = 0, 0
    ckpt = checkpoint_dir / "last.pt" if checkpoint_dir else None
    cfg_hash = stable_hash(cfg.model_dump())
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)  # our own file
        if state.get("config_hash") == cfg_hash:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler"):
                sched.load_state_dict(state["scheduler"])
            best_state, since_best = state["best_state"], state["since_best"]
            result.history, result.best_metric = state["history"], state["best_metric"]
            result.best_epoch = state["best_epoch"]
            start_epoch = result.resumed_from = state["epoch"]
            observer.event("resume", f"training resumed after epoch {start_epoch}")
    n = len(y)
    steps = math.ceil(n / cfg.batch_size)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        total = 0.0
        with observer.progress(f"epoch {epoch + 1}/{cfg.epochs}", steps) as advance:
            for i in range(steps):
                idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                if len(idx) < 2 and steps > 1:  # BatchNorm cannot train on one sample
                    advance()
                    continue
                inputs = [a[idx] for a in x]
                loss = loss_fn(first_tensor(model(*inputs)), y[idx], inputs)
                if not torch.isfinite(loss):
                    raise ModelpressError(
                        f"training diverged at epoch {epoch + 1} (loss {loss.item()}); "
                        f"lower the learning rate (now {cfg.lr})"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                total += loss.item() * len(idx)
                advance(loss=loss.item())
        model.eval()
        value = float(evaluate_module(model, data, task, threads)[metric])
        lr = opt.param_groups[0]["lr"]
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(value)
        elif sched is not None:
            sched.step()
        improved = value > result.best_metric
        if improved:
            result.best_metric, result.best_epoch, since_best = value, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        result.history.append(
            {
                "epoch": epoch + 1,
                "loss": total / n,
                metric: value,
                "lr": lr,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        observer.event(
            "epoch",
            f"epoch {epoch + 1}: loss {total / n:.4f}, {metric} {value:.4f}",
            **result.history[-1],
        )
        if ckpt is not None:
            _save(
                ckpt,
                {
                    "config_hash": cfg_hash,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "best_state": best_state,
                    "since_best": since_best,
                    "history": result.history,
                    "best_metric": result.best_metric,
                    "best_epoch": result.best_epoch,
                },
            )
        if cfg.early_stopping and since_best >= cfg.early_stopping:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    model.eval()
    return result


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


def train_and_save(
    recipe: Any, cfg: TrainConfig, out: Path, observer: Observer | None = None
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the recipe's model on its data and write a self-describing checkpoint to ``out``.

    Per-epoch checkpoints go to ``OUT_STEM.checkpoints/``; a rerun with the same config resumes.
    """
    from modelpress.core.context import build_context
    from modelpress.sources.inputs import InputSpec, format_input_shape

    ctx, baseline = build_context(recipe, observer)
    torch.set_num_threads(ctx.threads)
    module = cast(nn.Module, baseline.module)  # a torch baseline always holds its module
    result = fit(
        module,
        ctx.data,
        ctx.task,
        cfg,
        observer=observer,
        threads=ctx.threads,
        checkpoint_dir=out.parent / f"{out.stem}.checkpoints",
    )
    metrics = evaluate_module(module, ctx.data, ctx.task, ctx.threads)
    spec = ctx.model_spec
    meta = {
        "format": 1,
        "model": spec.architecture,
        "model_kwargs": spec.kwargs,
        "input_shape": format_input_shape([InputSpec(s.name, s.shape) for s in ctx.input_specs]),
        "task": ctx.task,
        "num_classes": ctx.data.num_classes,
        "class_names": ctx.data.class_names,
        "data": recipe.data.model_dump(mode="json"),
        "train": cfg.model_dump(),
        "train_hash": stable_hash({"train": cfg.model_dump(), "identity": recipe.identity()}),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, float | int)},
        "history": result.history,
    }
    save_checkpoint(out, module, meta)
    return result, metrics
