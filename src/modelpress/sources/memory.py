"""Modules handed to the Python API (``modelpress.compress(model, ...)``), held for a run as
the model source ``memory:CLASS@DIGEST`` (``sources.models`` builds a copy of one)."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

# Modules handed to the Python API (``modelpress.compress(model, ...)``) in this process, by the
# source name a recipe holds for them (``memory:CLASS@DIGEST``). Only the API puts one here: a
# recipe file naming ``memory:`` finds nothing and is refused.
_IN_MEMORY: dict[str, nn.Module] = {}


def hold_in_memory(module: nn.Module) -> str:
    """Register ``module`` as a model source for runs in this process; its name carries a
    digest of the weights, so the same module resumes a run and an edited one does not."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    name = f"memory:{type(module).__name__}@{digest.hexdigest()[:16]}"
    _IN_MEMORY[name] = module
    return name


def held(source: str) -> nn.Module | None:
    """The module registered as ``source``, or None."""
    return _IN_MEMORY.get(source)


def release_in_memory(source: str) -> None:
    """Forget a module ``hold_in_memory`` registered (its run has built its own copy)."""
    _IN_MEMORY.pop(source, None)
