"""Step configs and the handlers registered against them (the torchao config/handler pattern).

A technique is a public, typed, frozen config (``type:`` tag) plus a private handler
``(Artifact, config, Context) -> Artifact``. Users compose configs; configs round-trip to plain
dicts, and rebuilding one only resolves ``type`` names this registry knows.
"""

from __future__ import annotations

import difflib
import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator

from modelpress.core.rundir import check_name

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.core.context import Context


class StepConfig(BaseModel):
    """Base of every step config. Subclasses set ``type`` as a ``Literal`` and a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = None  # how the step is shown and its directory is named

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)

    def accepts(self, artifact: Artifact) -> bool:
        """Whether the step can work on ``artifact``; the runner feeds it the newest such one."""
        return artifact.format == "torch"

    def wants(self) -> str:
        """What ``accepts`` takes, in words (for the error when a run has none)."""
        return "a torch model"

    def default_name(self) -> str:
        return self.type

    @property
    def display_name(self) -> str:
        return self.name or self.default_name()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


Handler = Callable[["Artifact", Any, "Context"], "Artifact"]


@dataclass(frozen=True)
class _Registered:
    config_cls: type[StepConfig]
    handler: Handler


_REGISTRY: dict[str, _Registered] = {}

# Modules whose import registers the built-in steps (kept lazy: `import modelpress` stays light).
_BUILTIN_STEP_MODULES = (
    "modelpress.steps.torchscript",
    "modelpress.steps.export",
    "modelpress.steps.quantize",
    "modelpress.steps.qat",
    "modelpress.steps.distill",
    "modelpress.steps.prune",
)


def register_step(config_cls: type[StepConfig]) -> Callable[[Handler], Handler]:
    """Decorator: ``@register_step(MyConfig)`` on ``def _handler(artifact, config, ctx)``."""
    type_name = config_cls.model_fields["type"].default
    if not isinstance(type_name, str):
        raise TypeError(f"{config_cls.__name__}.type needs a string default (its tag)")

    def decorate(handler: Handler) -> Handler:
        _REGISTRY[type_name] = _Registered(config_cls, handler)
        return handler

    return decorate


def _load_builtins() -> None:
    for module in _BUILTIN_STEP_MODULES:
        importlib.import_module(module)


def step_types() -> dict[str, type[StepConfig]]:
    _load_builtins()
    return {name: reg.config_cls for name, reg in sorted(_REGISTRY.items())}


def config_class(type_name: str) -> type[StepConfig] | None:
    _load_builtins()
    reg = _REGISTRY.get(type_name)
    return reg.config_cls if reg else None


def unknown_type_message(type_name: str) -> str:
    known = list(step_types())
    close = difflib.get_close_matches(type_name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown step type '{type_name}'{hint}; known types: {', '.join(known)}"


def handler_for(config: StepConfig) -> Handler:
    _load_builtins()
    reg = _REGISTRY.get(config.type)
    if reg is None:
        raise KeyError(unknown_type_message(config.type))
    return reg.handler


def _type_name(annotation: Any) -> str:
    """``onnx | tflite``, ``int | null``, ``list[str]``: a field's type as a recipe spells it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def _spelled(value: Any) -> str:
    """A default as YAML spells it: null, true, 0.5, []."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe_fields(config_cls: type[BaseModel]) -> list[tuple[str, str, str]]:
    """(key, type with bounds, default) of every key a step config takes, ``type`` aside."""
    rows = []
    for key, field in config_cls.model_fields.items():
        if key == "type":
            continue
        kind = _type_name(field.annotation)
        bounds = [
            f"{sign} {getattr(m, attr)}"
            for m in field.metadata
            for attr, sign in _BOUNDS.items()
            if getattr(m, attr, None) is not None
        ]
        if bounds:
            kind += f" ({', '.join(bounds)})"
        default = (
            "required"
            if field.is_required()
            else _spelled(field.get_default(call_default_factory=True))
        )
        rows.append((key, kind, default))
    return rows
