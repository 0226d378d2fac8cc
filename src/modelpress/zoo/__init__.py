"""Reference architectures ("the zoo"): small, readable, export-friendly models built here.

Every model takes one tensor and returns logits ``(B, num_classes)`` (``yolo_nano``: boxes and
scores, see its module); none has data-dependent
Python control flow, so each one can be captured by ``torch.export`` and ``torch.jit.trace``.

    >>> from modelpress import zoo
    >>> model = zoo.create("resnet_tiny", num_classes=5)
    >>> [e.name for e in zoo.list_models()]
    ['dscnn', 'mlp', 'mobilenetv3_small', 'resnet18', 'resnet_tiny', 'text_encoder', 'yolo_nano']

Image models also take ``input_size`` (an int or ``[H, W]``): the model then resizes whatever
arrives to that resolution first (``InputResize``), e.g. a student run at 24×24 on 32×32 data.

Importing this package only imports torch and the standard library.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from modelpress.errors import ModelSourceError
from modelpress.zoo._common import InputResize, check_input_size
from modelpress.zoo.dscnn import dscnn
from modelpress.zoo.mlp import mlp
from modelpress.zoo.mobilenetv3 import mobilenetv3_small
from modelpress.zoo.resnet import resnet18, resnet_tiny
from modelpress.zoo.text_encoder import text_encoder
from modelpress.zoo.yolo_nano import yolo_nano

__all__ = ["ZOO", "ZooEntry", "arguments", "create", "get", "list_models"]


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: how to build it and what input it expects."""

    name: str
    factory: Callable[..., nn.Module]
    description: str  # one line, for `modelpress zoo`
    # image: (N, C, H, W); vector: (N, F), F = in_channels; tokens: (N, T) int64 ids
    input_kind: Literal["image", "vector", "tokens"]
    default_input_shape: tuple[int, ...]  # without the batch dimension, e.g. (3, 32, 32) or (30,)
    task: str | None = None  # the task its outputs are for, when not a class task


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry(
            name="mobilenetv3_small",
            factory=mobilenetv3_small,
            description="MobileNetV3-Small: inverted residuals + squeeze-excite, hard-swish",
            input_kind="image",
            default_input_shape=(3, 32, 32),
        ),
        ZooEntry(
            name="resnet18",
            factory=resnet18,
            description="ResNet-18: BasicBlocks [2, 2, 2, 2], widths 64-512",
            input_kind="image",
            default_input_shape=(3, 64, 64),
        ),
        ZooEntry(
            name="resnet_tiny",
            factory=resnet_tiny,
            description="Tiny ResNet: BasicBlocks [1, 1, 1, 1], widths 16-128, 3×3 stem",
            input_kind="image",
            default_input_shape=(3, 32, 32),
        ),
        ZooEntry(
            name="dscnn",
            factory=dscnn,
            description="DS-CNN: depthwise-separable CNN for keyword spotting / small images",
            input_kind="image",
            default_input_shape=(1, 32, 32),
        ),
        ZooEntry(
            name="text_encoder",
            factory=text_encoder,
            description="Transformer encoder over int64 token ids: attention, LayerNorm, GELU",
            input_kind="tokens",
            default_input_shape=(32,),
        ),
        ZooEntry(
            name="yolo_nano",
            factory=yolo_nano,
            description="YOLO-nano detector: anchor-free, decoupled head, strides 8/16/32",
            input_kind="image",
            default_input_shape=(3, 96, 96),
            task="detection",
        ),
        ZooEntry(
            name="mlp",
            factory=mlp,
            description="MLP: Linear-ReLU-Dropout layers for feature vectors",
            input_kind="vector",
            default_input_shape=(30,),
        ),
    )
}


def list_models() -> list[ZooEntry]:
    """All zoo entries, sorted by name."""
    return [ZOO[name] for name in sorted(ZOO)]


def get(name: str) -> ZooEntry:
    """The entry called ``name``; an unknown name raises ModelSourceError listing the known ones."""
    try:
        return ZOO[name]
    except (KeyError, TypeError):
        pass
    known = sorted(ZOO)
    message = f"unknown zoo model {name!r}; known: {', '.join(known)}"
    close = difflib.get_close_matches(str(name), known, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise ModelSourceError(message)


def arguments(entry: ZooEntry) -> list[str] | None:
    """The keyword arguments ``create`` accepts for ``entry``; None when its factory takes any."""
    params = inspect.signature(entry.factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    names = [
        p.name
        for p in params.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    # a detector's boxes are in its input's pixels: no resize in front of it
    resizable = entry.input_kind == "image" and entry.task is None
    return [*names, "input_size"] if resizable else names


def create(name: str, **kwargs: object) -> nn.Module:
    """Build zoo model ``name`` with ``kwargs`` passed to its factory (checked against it first);
    an image model given ``input_size`` comes wrapped in ``InputResize``."""
    entry = get(name)
    resizable = entry.input_kind == "image" and entry.task is None
    input_size = kwargs.pop("input_size", None) if resizable else None
    accepted = arguments(entry)
    if accepted is not None:
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            message = (
                f"zoo model {name!r} has no argument {unknown[0]!r}; "
                f"accepted: {', '.join(accepted)}"
            )
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
            raise ModelSourceError(message)
    model = entry.factory(**kwargs)
    if input_size is not None:
        return InputResize(model, check_input_size(input_size))
    return model
