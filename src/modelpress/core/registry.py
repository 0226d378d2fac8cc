"""Step configs and the handlers registered against them (the torchao config/handler pattern).

A technique is a public, typed, frozen config (``type:`` tag) plus a private handler
``(Artifact, config, StepContext) -> Artifact``. Users compose configs; configs round-trip to
plain dicts, and rebuilding one only resolves ``type`` names this registry knows.
"""

from __future__ import annotations

import difflib
import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelpress.core.rundir import check_name

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.core.context import StepContext


@dataclass(frozen=True)
class Takes:
    """One kind of input a step works on, as data: a format, the precisions it may have, and a
    companion the artifact must carry (a QAT model's float weights, for TFLite)."""

    format: str
    precisions: tuple[str, ...] = ("fp32",)
    companion: str | None = None  # a file the artifact hands off (a key of Artifact.handoffs)

    def matches(self, artifact: Artifact) -> bool:
        return (
            artifact.format == self.format
            and artifact.precision in self.precisions
            and (self.companion is None or self.companion in artifact.handoffs)
        )

    def describe(self) -> str:
        what = f"{' or '.join(self.precisions)} {self.format} model".strip()
        what = f"{_article(what)} {what}"
        return what + (f" with its {self.companion.replace('_', ' ')}" if self.companion else "")

    def takes_made(self, made: Takes) -> bool:
        """Whether an artifact a step is known to make (``StepConfig.makes``: its precisions
        empty when they depend on the input) fits this input."""
        return (
            made.format == self.format
            and all(p in self.precisions for p in made.precisions)
            and (self.companion is None or self.companion == made.companion)
        )


def describe_artifact(artifact: Artifact) -> str:
    """``onnx-int8 is an onnx int8 artifact``: what a step's input turned out to be."""
    kind = f"{artifact.format} {artifact.precision}"
    return f"`{artifact.name}` is {_article(kind)} {kind} artifact"


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u", "f") else "a"  # an fp32, an onnx


class StepConfig(BaseModel):
    """Base of every step config. Subclasses set ``type`` as a ``Literal`` and a default.

    ``id`` names the node other steps start from (default: the step's name); ``from`` says where
    this one starts: ``baseline``, a step's id, or a list of ids for a step of several inputs.
    Without ``from`` the step takes the newest artifact before it in the recipe that it accepts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: str
    name: str | None = None  # how the step is shown and its artifacts are named
    id: str | None = None
    from_: str | list[str] | None = Field(None, alias="from")

    max_inputs: ClassVar[int] = 1  # a cascade takes several
    # fields of ``targets`` the step reads (its node key holds them): export's INT8 fallback
    reads_targets: ClassVar[tuple[str, ...]] = ()

    @field_validator("name", "id")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)

    @field_validator("from_")
    @classmethod
    def _sources(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and not v:
            raise ValueError("name at least one step id (or baseline)")
        return v

    def takes(self) -> list[Takes]:
        """The inputs this step works on (the default: an fp32 torch model)."""
        return [Takes("torch")]

    @classmethod
    def variant(cls, raw: dict[str, Any]) -> type[StepConfig]:
        """The config class that validates the step ``raw`` (a step whose keys depend on one of
        its fields, as export's on its format, returns that field's own class)."""
        return cls

    @classmethod
    def variants(cls) -> dict[str, type[StepConfig]]:
        """Its config classes by what chooses them (``format: onnx``), for ``modelpress steps``
        and the keys a search may vary; one, itself, by default."""
        return {"": cls}

    @classmethod
    def key_elsewhere(cls, key: str) -> str | None:
        """For an unknown key: which variants take it (``format: onnx``), or None."""
        takers = [what for what, c in cls.variants().items() if what and key in c.model_fields]
        return " or ".join(takers) if takers else None

    def accepts(self, artifact: Artifact) -> bool:
        """Whether the step can work on ``artifact``; the runner feeds it the newest such one."""
        return any(t.matches(artifact) for t in self.takes())

    def wants(self) -> str:
        """What ``accepts`` takes, in words (for the error when a run has none)."""
        return ", or ".join(t.describe() for t in self.takes())

    def makes(self) -> Takes | None:
        """What the step's artifact is, as far as the config alone says (a format; precisions
        and companion when they do not depend on the input), so that ``from:`` is checked when
        the recipe is read; None when only the run can tell."""
        return None

    def check_before_run(self, ctx: StepContext, parent: Artifact | None, where: str) -> None:
        """Checks that need no model run, made before the baseline is measured: flags parsed,
        model sources resolved (and trusted), layer names looked up in built models. ``parent``
        is the step's input when it is known before the run (the baseline), else None; raise a
        ModelpressError naming ``where`` (``steps.N (NAME)``). The default checks nothing."""
        return None

    @property
    def ref(self) -> str:
        """How ``from:`` names this step."""
        return self.id or self.display_name

    @property
    def sources(self) -> list[str] | None:
        """``from`` as a list; None when the step takes the newest artifact it accepts."""
        return [self.from_] if isinstance(self.from_, str) else self.from_

    def computation(self) -> dict[str, Any]:
        """The fields that decide what the step computes (its node key): not how it is named
        or wired, which the key holds through its parents' keys."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"name", "id", "from_"})

    def default_name(self) -> str:
        return self.type

    @property
    def display_name(self) -> str:
        return self.name or self.id or self.default_name()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


Handler = Callable[["Artifact", Any, "StepContext"], "Artifact"]


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
        key = field.alias or key  # ``from``
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
