"""Resumable training: ``last.pt``, written after every epoch and read back by a rerun of the
same training."""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelpress.core.observer import Observer
from modelpress.errors import first_line
from modelpress.training.checkpoint import write_torch
from modelpress.training.optim import snapshot

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


def save_state(path: Path, observer: Observer, payload: dict[str, Any]) -> None:
    try:
        payload = _storable(payload)
    except TypeError as e:  # training goes on; only resuming it is lost
        observer.event("warning", f"{path}: not written ({e}); an interrupted run starts over")
        return
    write_torch(path, payload)


def load_state(
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
    weights, opt_state = snapshot(model, loss_module), copy.deepcopy(opt.state_dict())
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
