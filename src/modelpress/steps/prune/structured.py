"""Structured channel pruning: remove whole channels, so the pruned model is really smaller.

Built on Torch-Pruning's three separate ideas:

    dependency graph  which layers must lose the same channels together (a conv's outputs, the
                      BatchNorm after it, the next conv's inputs, every branch of a residual add)
    importance        which channels of such a group matter least ("magnitude": L2 norm of the
                      group's weights; "bn-scale": |γ| of its BatchNorms (Network Slimming);
                      "taylor": |w · ∂L/∂w| summed over a few labelled batches (Molchanov 2019))
    pruner            removes ``ratio`` of the channels of every group (local, not global ranking,
                      so each layer keeps its share and no layer is emptied)

The output layer(s) the task names are never pruned (the number of classes must not change),
nor any module the user names in ``keep``. Pruning runs on a copy; only when the copy has been
pruned, still runs and still gives outputs of the same shape is the result written back into the
model (through ``sources.structure``, the same path a saved checkpoint takes), so a failure
leaves the model untouched. To save the result, take ``structure.snapshot(model)`` before
pruning and store ``structure_changes(before, model)`` next to the state dict.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from modelpress.errors import StepError, first_line
from modelpress.evaluate.size import count_macs
from modelpress.sources.models import first_tensor
from modelpress.sources.structure import apply_structure, snapshot, structure_changes
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.tasks.base import Task

__all__ = ["IMPORTANCES", "prune_channels"]

IMPORTANCES = ("magnitude", "bn-scale", "taylor")

_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
_WIDTH = {"out_channels", "out_features"}  # what `channels` in the facts reports, per layer


def prune_channels(
    model: nn.Module,
    example_inputs: list[torch.Tensor],
    ratio: float,
    *,
    importance: str = "magnitude",
    round_to: int | None = None,
    keep: Sequence[str] = (),
    num_classes: int | None = None,
    task: Task | None = None,
    gradient_batches: Iterable[tuple[list[torch.Tensor], torch.Tensor]] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    where: str = "prune",
) -> dict[str, Any]:
    """Remove ``ratio`` of the channels of every prunable layer group of ``model``, in place.

    ``example_inputs`` is a real batch, used to trace the graph and count MACs. ``round_to``
    keeps widths a multiple of that number (never below it); layers narrower than it are left
    as they are. ``keep`` names modules whose output channels are never removed, in addition to
    the output layer(s) ``task`` names (``Task.output_layers``; default classification's: the
    last Linear/Conv the forward runs and, given ``num_classes``, any Linear with that many
    outputs). "taylor" importance needs ``gradient_batches`` of
    ``(inputs, labels)`` and a ``loss_fn``; gradients are taken in eval mode (BatchNorm
    statistics stay as they are) and not left behind.

    Returns facts for the record: importance, ratio, round_to, kept (layer names never pruned),
    params_before/after, macs_before/after (one sample, by the record's own counter,
    ``evaluate.size.count_macs``) and channels ``{layer: [before, after]}`` for the layers
    that changed.
    """
    _check_options(where, ratio, importance, round_to, gradient_batches, loss_fn)
    if importance == "bn-scale" and not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
    ):
        raise StepError(
            f"{where}: importance 'bn-scale' ranks channels by BatchNorm scales, but "
            f"{type(model).__name__} has no BatchNorm layer; use importance: magnitude"
        )
    kept = resolve_keep(where, model, keep)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = [example_inputs]

    before = snapshot(model)
    # Tracing and Taylor importance need autograd, whatever mode the caller runs in.
    with torch.inference_mode(False), torch.enable_grad():
        inputs = [_trackable(x) for x in example_inputs]
        try:
            work = copy.deepcopy(model).eval()
        except Exception as e:
            raise StepError(
                f"{where}: the model cannot be copied to be pruned safely: {first_line(e)}"
            ) from None
        work.zero_grad(set_to_none=True)
        reference, order = _probe(where, work, inputs)
        if task is None:
            from modelpress.tasks import get_task

            task = get_task("classification")
        kept |= task.output_layers(work, order, num_classes)
        with quiet(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            counts = _prune_copy(
                where,
                work,
                inputs,
                reference,
                ratio=ratio,
                importance=importance,
                round_to=round_to,
                kept=sorted(kept),
                gradient_batches=gradient_batches,
                loss_fn=loss_fn,
            )
        notes = sorted({first_line(w.message) for w in caught if "torch_pruning" in w.filename})

    # Only now, with the copy pruned and checked, does the caller's model change.
    changes = structure_changes(before, work)
    state = work.state_dict()
    apply_structure(model, changes, state)
    model.load_state_dict(state, strict=True)
    channels = {
        name: [before[name][key], value]
        for name, attrs in changes.items()
        for key, value in attrs.items()
        if key in _WIDTH
    }
    return {
        "importance": importance,
        "ratio": float(ratio),
        "round_to": round_to,
        "kept": sorted(kept),
        **counts,
        "channels": channels,
        "notes": notes,
    }


def _prune_copy(
    where: str,
    work: nn.Module,
    inputs: list[torch.Tensor],
    reference: torch.Size,
    *,
    ratio: float,
    importance: str,
    round_to: int | None,
    kept: list[str],
    gradient_batches: Iterable[tuple[list[torch.Tensor], torch.Tensor]] | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> dict[str, int]:
    """Prune ``work`` (a private copy, in eval mode) and check it still runs; returns counts."""
    import torch_pruning as tp

    one = [x[:1] for x in inputs]  # MACs of one sample, as the record counts them
    macs_before, params_before = count_macs(work, one), _params(work)
    with _tracing(work) as trace:
        try:
            pruner = _pruner_class()(
                work,
                inputs,
                importance=_importance(tp, importance),
                pruning_ratio=float(ratio),
                ignored_layers=[work.get_submodule(name) for name in kept],
                round_to=round_to,
                # Torch-Pruning's defaults for these are shared mutable dicts that it fills in;
                # fresh ones keep one call's layers out of the next.
                in_channel_groups={},
                out_channel_groups={},
                num_heads={},
                # Without it Torch-Pruning calls model(*inputs) and, if that raises, retries
                # model(inputs), whose error then hides the real one.
                forward_fn=lambda m, x: m(*x),
            )
        except Exception as e:
            raise _cannot_handle(where, work, e, *trace.culprit()) from None
    if importance == "taylor":
        _accumulate_gradients(where, work, gradient_batches or (), loss_fn)
    _step(where, work, pruner)
    work.zero_grad(set_to_none=True)
    _check_pruned(where, work, inputs, reference)
    macs_after, params_after = count_macs(work, one), _params(work)
    return {
        "params_before": int(params_before),
        "params_after": int(params_after),
        "macs_before": macs_before,
        "macs_after": macs_after,
    }


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _check_options(
    where: str,
    ratio: float,
    importance: str,
    round_to: int | None,
    gradient_batches: object,
    loss_fn: object,
) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise StepError(f"{where}: ratio must be between 0 and 1 (exclusive), got {ratio!r}")
    if importance not in IMPORTANCES:
        raise StepError(
            f"{where}: unknown importance {importance!r}; known: {', '.join(IMPORTANCES)}"
        )
    if round_to is not None and (
        isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1
    ):
        raise StepError(f"{where}: round_to must be an integer >= 1, got {round_to!r}")
    if importance == "taylor" and (gradient_batches is None or loss_fn is None):
        raise StepError(
            f"{where}: importance 'taylor' needs labelled batches and a loss to take gradients "
            "from; give the step data with labels, or use importance: magnitude"
        )


def resolve_keep(where: str, model: nn.Module, keep: Sequence[str]) -> set[str]:
    if isinstance(keep, str):  # one name, not a sequence of one-letter names
        keep = [keep]
    known = [name for name, _ in model.named_modules() if name]
    for name in keep:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise StepError(
                f"{where}: keep names module {name!r} that {type(model).__name__} "
                f"does not have{hint}"
            )
    return set(keep)


def _probe(
    where: str, model: nn.Module, example_inputs: list[torch.Tensor]
) -> tuple[torch.Size, list[str]]:
    """The output's shape, and the Linear/Conv modules in the order one forward runs them (from
    which the task names its output layers)."""
    order: list[str] = []
    hooks = [
        module.register_forward_hook(lambda *_, name=name: order.append(name))
        for name, module in model.named_modules()
        if isinstance(module, _LAYERS)
    ]
    try:
        with torch.no_grad():
            shape = first_tensor(model(*example_inputs)).shape
    except Exception as e:
        raise StepError(
            f"{where}: the model does not run on the example inputs "
            f"({', '.join(str(tuple(x.shape)) for x in example_inputs)}): {first_line(e)}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
    return shape, order


def _importance(tp: Any, name: str) -> Any:
    if name == "bn-scale":
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.GroupMagnitudeImportance(p=2)


@functools.cache
def _pruner_class() -> type:
    """Torch-Pruning's pruner with two changes (defined on first use: importing this module
    must not import torch_pruning).

    - The group being scored or pruned is remembered, so a failure can name its layer.
    - ``round_to`` never empties a layer. Torch-Pruning rounds the kept width down to a multiple
      of ``round_to``, which is 0 when fewer than ``round_to`` channels would remain (16
      channels at ratio 0.75, round_to 8), and then silently skips the layer; keeping
      ``round_to`` channels is what the user asked for.
    """
    import torch_pruning as tp

    class Pruner(tp.pruner.BasePruner):
        current_group: Any = None

        def estimate_importance(self, group: Any) -> torch.Tensor:
            self.current_group = group
            return super().estimate_importance(group)

        def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
            kept = current_channels - n_pruned
            kept = max(round_to, kept - kept % round_to)
            return max(current_channels - kept, 0)

    return Pruner


def _step(where: str, model: nn.Module, pruner: Any) -> None:
    try:
        for group in pruner.step(interactive=True):
            pruner.current_group = group
            group.prune()
    except Exception as e:
        group = pruner.current_group
        layer = group[0].dep.target.module if group is not None else None
        names = {module: name for name, module in model.named_modules()}
        raise _cannot_handle(where, model, e, names.get(layer)) from None


def _accumulate_gradients(
    where: str,
    model: nn.Module,
    batches: Iterable[tuple[list[torch.Tensor], torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> None:
    """Sum ∂L/∂w over ``batches`` into ``.grad`` (the model is a private copy, so every
    parameter may be made trainable)."""
    for p in model.parameters():
        p.requires_grad_(True)
    seen = 0
    try:
        for inputs, labels in batches:
            if isinstance(inputs, torch.Tensor):
                inputs = [inputs]
            outputs = first_tensor(model(*(_trackable(x) for x in inputs)))
            loss_fn(outputs, _trackable(labels)).backward()  # type: ignore[misc]
            seen += 1
    except Exception as e:
        raise StepError(
            f"{where}: importance 'taylor' could not take gradients: {first_line(e)}"
        ) from None
    if not seen:
        raise StepError(f"{where}: importance 'taylor' got no labelled batches to take gradients")
    # A layer the loss never reached has no gradient; zero importance is the truth for it, and
    # Torch-Pruning's Taylor importance would fail on a missing .grad.
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)


def _trackable(x: torch.Tensor) -> torch.Tensor:
    """``x``, or a copy autograd can record when it was made under ``torch.inference_mode``."""
    return x.clone() if x.is_inference() else x


def _check_pruned(
    where: str, model: nn.Module, example_inputs: list[torch.Tensor], reference: torch.Size
) -> None:
    with _tracing(model) as trace:
        try:
            with torch.no_grad():
                shape = first_tensor(model(*example_inputs)).shape
        except Exception as e:
            raise _cannot_handle(where, model, e, *trace.culprit()) from None
    if shape != reference:
        raise StepError(
            f"{where}: pruning changed the output shape from {tuple(reference)} to "
            f"{tuple(shape)}; name the layer that produces the output in keep: [...]"
        )


@dataclass
class _Trace:
    running: list[str] = field(default_factory=list)  # modules inside forward, outermost first
    finished: str | None = None  # the module whose forward completed last

    def culprit(self) -> tuple[str | None, str | None]:
        """(module the failure happened in, module that ran just before) after an exception."""
        return (self.running[-1] if self.running else None), self.finished


@contextlib.contextmanager
def _tracing(model: nn.Module) -> Iterator[_Trace]:
    """Follow which module's forward is running, to name the one an exception came from."""
    trace = _Trace()

    # A forward hook that returns something replaces the module's output: these return None.
    def enter(name: str) -> None:
        trace.running.append(name)

    def leave() -> None:
        trace.finished = trace.running.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda *_, n=name: enter(n)))
        handles.append(module.register_forward_hook(lambda *_: leave()))
    try:
        yield trace
    finally:
        for handle in handles:
            handle.remove()


def _cannot_handle(
    where: str, model: nn.Module, exc: Exception, name: str | None, after: str | None = None
) -> StepError:
    """A one-line error naming the module pruning broke on, and what the user can do about it.

    ``name`` is the module the failure happened in; when that is the model itself (a reshape in
    its own forward), ``after`` is the module whose output it was working on. A torch.nn layer
    inside a user-written block is reported as the block: the block's forward (a reshape to a
    fixed width, a split into fixed sizes) is what cannot follow a narrower layer, and keeping
    the whole block is the fix that works.
    """
    reason = first_line(exc)
    fix = "use method l1-unstructured"
    if name:
        place = "module"
    elif after:
        place, name = f"{type(model).__name__}'s forward after module", after
    else:
        return StepError(
            f"{where}: structured pruning cannot handle {type(model).__name__}: {reason}; {fix}"
        )
    name = _owner(model, name)
    module = model.get_submodule(name)
    if _is_torch_layer(module):
        suggested = [name]
    else:  # every block of the same kind will break the same way
        suggested = [n for n, m in model.named_modules() if type(m) is type(module)]
    return StepError(
        f"{where}: structured pruning cannot handle {place} {name!r} ({type(module).__name__}): "
        f"{reason}; keep it with keep: [{', '.join(map(repr, suggested))}] or {fix}"
    )


def _owner(model: nn.Module, name: str) -> str:
    """``name``, or the user-written block it sits in when it is a plain torch.nn layer."""
    parent = name.rpartition(".")[0]
    inside_block = parent and not _is_torch_layer(model.get_submodule(parent))
    return parent if inside_block and _is_torch_layer(model.get_submodule(name)) else name


def _is_torch_layer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.")
