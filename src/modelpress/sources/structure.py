"""Save and reload structurally pruned models as plain data, never as pickled modules.

Structured pruning physically removes channels: a conv's ``out_channels`` drops from 64 to 32
and its weight from (64, C, 3, 3) to (32, C, 3, 3). A state dict alone cannot be loaded into a
freshly built model any more, and pickling the whole module would tie the checkpoint to the
code that defined it (and run that code on load). Instead a checkpoint stores

    state_dict   the pruned weights, as usual
    structure    {module name: {attribute: new value}} for the attributes pruning changed,
                 e.g. {"layer1.0.conv1": {"out_channels": 32}, "layer1.0.bn1": {"num_features": 32}}

and a model is rebuilt by building the original architecture from code, ``apply_structure``,
then ``load_state_dict(strict=True)``. Both parts are plain data, so ``torch.load`` with
``weights_only=True`` reads them:

    >>> before = snapshot(model)
    >>> prune(model)                                    # anything that resizes layers in place
    >>> ckpt = {"state_dict": model.state_dict(), "structure": structure_changes(before, model)}
    >>> fresh = apply_structure(build_original(), ckpt["structure"], ckpt["state_dict"])
    >>> fresh.load_state_dict(ckpt["state_dict"], strict=True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from modelpress.errors import ModelSourceError

__all__ = ["apply_structure", "snapshot", "structure_changes"]

# The train/eval flag is a run-time mode, not structure: a rebuilt model keeps its own.
_NOT_STRUCTURE = frozenset({"training"})


def _is_plain(value: object) -> bool:
    """int / float / bool / str / None, or a tuple or list of those (nested)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, tuple | list):
        return all(_is_plain(v) for v in value)
    return False


def _to_json(value: Any) -> Any:
    """Tuples become lists (what JSON and ``weights_only`` loading both keep)."""
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    return value


def _like(value: Any, template: Any) -> Any:
    """``value`` (from JSON) with tuples restored wherever ``template`` had a tuple."""
    if isinstance(value, list) and isinstance(template, tuple | list):
        items = [_like(v, template[i] if i < len(template) else None) for i, v in enumerate(value)]
        return tuple(items) if isinstance(template, tuple) else items
    return value


def snapshot(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Each module's plain structural attributes: ``{name: {attribute: value}}``.

    Only public instance attributes with plain values are taken (``in_channels``,
    ``kernel_size``, ``groups``, ``num_features``, ``normalized_shape`` ...). Parameters, buffers
    and submodules live in the module's private dicts, so they are never included.
    """
    return {name: _plain_attrs(module) for name, module in model.named_modules()}


def _plain_attrs(module: nn.Module) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(module).items()
        if not key.startswith("_")
        and key not in _NOT_STRUCTURE
        and not callable(value)
        and _is_plain(value)
    }


def structure_changes(
    before: dict[str, dict[str, Any]], model: nn.Module
) -> dict[str, dict[str, Any]]:
    """The attributes of ``model`` that differ from the ``before`` snapshot, as JSON-plain values.

    Modules with no change are left out, so an unpruned model gives ``{}``.
    """
    changes: dict[str, dict[str, Any]] = {}
    for name, attrs in snapshot(model).items():
        old = before.get(name, {})
        diff = {
            key: _to_json(value)
            for key, value in attrs.items()
            if key not in old or _to_json(old[key]) != _to_json(value)
        }
        if diff:
            changes[name] = diff
    return changes


def _resized(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """An empty tensor of ``shape`` like ``tensor`` (values come from the state dict later)."""
    empty = torch.empty(shape, dtype=tensor.dtype, device=tensor.device)
    if isinstance(tensor, nn.Parameter):
        return nn.Parameter(empty, requires_grad=tensor.requires_grad)
    return empty


def apply_structure(
    model: nn.Module, structure: dict[str, dict[str, Any]], state_dict: dict[str, torch.Tensor]
) -> nn.Module:
    """Reshape a freshly built ``model`` to a pruning record, in place; returns ``model``.

    Sets each recorded attribute, then gives every parameter and buffer whose shape differs from
    ``state_dict``'s an empty tensor of the saved shape (dtype, device and ``requires_grad``
    kept), so that ``model.load_state_dict(state_dict, strict=True)`` succeeds afterwards.
    """
    if not isinstance(structure, dict):
        raise ModelSourceError(
            f"the checkpoint's pruning record must be a dict of module names, "
            f"got {type(structure).__name__}"
        )
    modules = dict(model.named_modules())
    model_name = type(model).__name__
    for name, attrs in structure.items():
        if name not in modules:
            raise ModelSourceError(
                f"the checkpoint's pruning record names module {name!r} that model {model_name} "
                "does not have; rebuild the architecture the checkpoint was pruned from"
            )
        module = modules[name]
        if not isinstance(attrs, dict):
            raise ModelSourceError(
                f"the checkpoint's pruning record for module {name!r} must be a dict of "
                f"attributes, got {type(attrs).__name__}"
            )
        settable = _plain_attrs(module)  # only what a pruning record records: plain values
        for key, value in attrs.items():
            if key not in settable:
                raise ModelSourceError(
                    f"the checkpoint's pruning record names attribute {name}.{key} that model "
                    f"{model_name} does not have; rebuild the architecture the checkpoint was "
                    "pruned from"
                )
            if not _is_plain(value):
                raise ModelSourceError(
                    f"the checkpoint's pruning record sets {name}.{key} to a "
                    f"{type(value).__name__}; a pruning record holds only numbers, strings and "
                    "lists of them (the file is damaged or not from modelpress)"
                )
            setattr(module, key, _like(value, getattr(module, key)))

    # remove_duplicate=False: a tied weight appears under every name, and each owner must get
    # the same new tensor so the tie survives.
    replaced: dict[int, torch.Tensor] = {}
    tensors = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for full_name, tensor in tensors:
        saved = state_dict.get(full_name)
        if saved is None or (saved.shape == tensor.shape and id(tensor) not in replaced):
            continue
        if id(tensor) not in replaced:
            replaced[id(tensor)] = _resized(tensor, saved.shape)
        new = replaced[id(tensor)]
        owner_name, _, leaf = full_name.rpartition(".")
        owner = model.get_submodule(owner_name)
        if isinstance(new, nn.Parameter):
            setattr(owner, leaf, new)
        else:
            owner._buffers[leaf] = new  # keeps the buffer's persistent / non-persistent status
    return model
