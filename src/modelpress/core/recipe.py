"""The recipe: the whole job as data, validated all at once before any work starts.

YAML or JSON; unknown keys are rejected; every error carries its field path
(``steps.1.opset: Input should be ...``) and all errors are reported together on one line.
Relative paths resolve against the recipe file's folder, so a recipe runs from anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from modelpress.core.data_config import DataConfig, Strict
from modelpress.core.graph import wiring_errors
from modelpress.core.inputs import InputSpec, parse_input_shape
from modelpress.core.recipe_errors import validation_errors
from modelpress.core.recipe_file import (
    STEP_MODELS,
    apply_overrides,
    read_recipe_file,
    resolve_paths,
)
from modelpress.core.registry import StepConfig, config_class, unknown_type_message
from modelpress.core.rundir import check_name
from modelpress.core.task_registry import settings_model, task_names, unknown_task_message
from modelpress.core.trust import CodeTrust
from modelpress.errors import RecipeError


def _registered_task(name: str) -> str:
    if name not in task_names():
        raise ValueError(unknown_task_message(name))
    return name


Task = Annotated[str, AfterValidator(_registered_task)]  # a name in the task registry


class Targets(Strict):
    max_size_mb: float | None = Field(None, gt=0)
    min_speedup: float | None = Field(None, gt=0)
    max_accuracy_drop: float | None = Field(None, ge=0)  # percentage points of the primary metric
    max_latency_ms: float | None = Field(None, gt=0)


class VerifyConfig(Strict):
    """When an artifact counts as ``degraded`` against its parent. Class heads are judged by
    top-1 agreement; fidelity outputs (embeddings, features) by mean per-sample cosine, since
    the argmax over embedding dimensions means nothing. A retrained model (distilled, pruned and
    fine-tuned) is meant to differ: its agreement is reported, not judged."""

    min_agreement: float = Field(0.9, ge=0, le=1)
    min_cosine: float = Field(0.99, ge=-1, le=1)


class EvaluateConfig(Strict):
    warmup: int = Field(10, ge=0)
    repeats: int = Field(50, ge=3)
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 32])  # latency at the first,
    # throughput at the largest
    threads: int | None = Field(None, ge=1)  # None: all cores of this machine
    eval_batch_size: int = Field(64, ge=1)
    max_samples: int | None = Field(None, ge=1)  # cap on validation samples evaluated
    verify: VerifyConfig = VerifyConfig()
    # The costly analyses, each a switch (on by default; a quick run or a test turns them off,
    # and the record says "not measured (evaluate.X off)" where the figure would be):
    # the peak memory of each deployed file in a fresh process that loads only its runtime
    own_process_memory: bool = True
    # what an int8 artifact's runtime really runs in int8 (its profiler, its compiled graph)
    int8_coverage: bool = True
    # the end-of-run races: each quantized artifact timed in turn with its FP32 sibling, and
    # the recommendation's finalists timed side by side
    races: bool = True

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        if not v or any(b < 1 for b in v):
            raise ValueError("give at least one batch size, each ≥ 1")
        return v

    @model_serializer(mode="wrap")
    def _switches_when_off(self, handler: Any) -> dict[str, Any]:
        """The switches written only when off: a recipe (and a run's identity) that leaves
        them on reads as before they existed, so earlier runs still --resume."""
        d = handler(self)
        return {k: v for k, v in d.items() if not (k in SWITCHES and v is True)}


SWITCHES = ("own_process_memory", "int8_coverage", "races")  # EvaluateConfig's costly analyses


class OptimizeBudget(Strict):
    """What ``modelpress optimize`` must meet, and how long it may search."""

    max_accuracy_drop: float | None = Field(None, ge=0)  # points of the primary metric
    max_size_mb: float | None = Field(None, gt=0)
    max_latency_ms: float | None = Field(None, gt=0)
    min_speedup: float | None = Field(None, gt=0)
    time: str | None = None  # 90s, 20m, 1h30m
    max_trials: int | None = Field(None, ge=1)
    coarse: int | None = Field(None, ge=1)  # validation samples of the first pass


class OptimizeSpec(Strict):
    """A search over whole pipelines (``search/``): the space as lists of steps' fields."""

    budget: OptimizeBudget = OptimizeBudget()
    prefer: list[Literal["latency_ms", "size_mb", "loss_pt"]] = Field(
        default_factory=lambda: ["latency_ms", "size_mb"]
    )
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Recipe(Strict):
    name: str | None = None
    model: str
    weights: str | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig
    # a task's name, or a mapping with its name and the settings it registers
    # (``task: {name: detection, iou: 0.6}``). None: binary for builtin:breast_cancer, fidelity
    # without labels, the data's suggestion (detection for yolo:/coco:), else classification
    task: Task | None = None
    task_settings: dict[str, Any] = Field(default_factory=dict, exclude=True)
    input_shape: str | list[int] | dict[str, Any] | None = None
    targets: Targets = Targets()
    steps: list[StepConfig] = Field(default_factory=list)
    # step ids whose artifacts the "Techniques compared" table shows, side by side
    compare: list[str] = Field(default_factory=list)
    evaluate: EvaluateConfig = EvaluateConfig()
    out: str | None = None
    seed: int = 0
    # let a .pt checkpoint build its model with any factory it names (runs that code). Only the
    # person at the keyboard sets it (--trust-checkpoint-code, --set, or the API): a recipe file
    # that says so is refused (load_recipe), and it is never written out (to_dict)
    trust_checkpoint_code: bool = False
    optimize: OptimizeSpec | None = None  # modelpress optimize RECIPE searches this space

    @model_validator(mode="before")
    @classmethod
    def _task_spec(cls, data: Any) -> Any:
        """``task: {name: NAME, **settings}`` into the name and its settings; a recipe written
        before the settings moved under ``task:`` (a top-level ``detection:``) still reads."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "task_settings" in data:
            raise ValueError(
                "task_settings: not a recipe key; a task's settings go under task: "
                "(task: {name: detection, iou: 0.6})"
            )
        settings: dict[str, Any] = {}
        task = data.get("task")
        if isinstance(task, dict):
            settings = {k: v for k, v in task.items() if k != "name"}
            if not isinstance(task.get("name"), str):
                raise ValueError(
                    "task.name: a task given as a mapping names its task "
                    "(task: {name: detection, iou: 0.6})"
                )
            data["task"] = task["name"]
        legacy = data.pop("detection", None)
        if legacy is not None and data.get("task") in (None, "detection"):
            if not isinstance(legacy, dict):
                raise ValueError("detection: a mapping of detection settings (conf, iou, ...)")
            settings = {**legacy, **settings}
        if settings:
            data["task_settings"] = settings
        return data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)

    @field_validator("data", mode="before")
    @classmethod
    def _data_string(cls, v: Any) -> Any:
        return {"source": v} if isinstance(v, str) else v

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, v: Any) -> Any:
        if v is not None:
            try:
                parse_input_shape(v, where="_")
            except RecipeError as e:  # pydantic reports ValueErrors with the field path
                raise ValueError(str(e).removeprefix("_: ")) from None
        return v

    @property
    def input_specs(self) -> list[InputSpec] | None:
        return None if self.input_shape is None else parse_input_shape(self.input_shape)

    def code_trust(self) -> CodeTrust:
        """The factories a checkpoint may name: those this recipe names itself (its model, a
        step's teacher or student), or any when ``trust_checkpoint_code``."""
        named = [self.model] + [
            source
            for step in self.steps
            for key in STEP_MODELS
            if isinstance(source := getattr(step, key, None), str)
        ]
        return CodeTrust.naming(named, self.trust_checkpoint_code)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data, as a file keeps it: without ``trust_checkpoint_code``,
        which a file never carries."""
        d = self.model_dump(
            mode="json", exclude_none=True, exclude={"steps", "trust_checkpoint_code"}
        )
        if self.task_settings:
            d["task"] = {"name": self.task, **self.task_settings}
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    def identity(self) -> dict[str, Any]:
        """The fields that decide the baseline: a resumed run must agree on all of them."""
        d = self.to_dict()
        return {
            k: d.get(k)
            for k in (
                "model",
                "weights",
                "model_kwargs",
                "data",
                "task",
                "input_shape",
                "evaluate",
                "seed",
            )
        }


def _parse_step(
    raw: Any, index: int, errors: list[str], flags: dict[str, str] | None = None
) -> StepConfig | None:
    where = f"steps.{index}"
    if isinstance(raw, StepConfig):
        return raw
    if not isinstance(raw, dict):
        errors.append(f"{where}: a step is a mapping with a 'type:' key, got {raw!r}")
        return None
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        errors.append(f"{where}.type: missing; every step names its type")
        return None
    cls = config_class(type_name)
    if cls is None:
        errors.append(f"{where}.type: {unknown_type_message(type_name)}")
        return None
    cls = cls.variant(raw)
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        errors.extend(validation_errors(e, cls, ("steps", index), flags))
        return None


def build_recipe(
    data: dict[str, Any], source: str = "recipe", flags: dict[str, str] | None = None
) -> Recipe:
    """Validate a whole recipe dict; raise one RecipeError listing every problem with its path,
    or with the CLI flag that set it when ``flags`` maps recipe paths to flags."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of keys (model, data, steps, ...)")
    data = dict(data)
    raw_steps = data.pop("steps", []) or []
    errors: list[str] = []
    recipe = None
    try:
        recipe = Recipe.model_validate({**data, "steps": []})
    except ValidationError as e:
        errors.extend(validation_errors(e, Recipe, flags=flags))
    if not isinstance(raw_steps, list):
        errors.append("steps: a list of steps, each with a 'type:'")
        raw_steps = []
    steps = [_parse_step(raw, i, errors, flags) for i, raw in enumerate(raw_steps)]
    names: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step is None:
            continue
        if step.display_name in names:
            field = "id" if step.id and not step.name else "name"
            errors.append(
                f"steps.{i}.{field}: '{step.display_name}' is already the {field} of steps."
                f"{names[step.display_name]}; give one of them a distinct `{field}:`"
            )
        names[step.display_name] = i
    if not errors:
        errors.extend(wiring_errors([s for s in steps if s is not None]))
    if not errors and recipe is not None:
        ids = [s.ref for s in steps if s is not None]
        errors.extend(
            f"compare.{i}: '{node}' names no step; the ids are: {', '.join(ids)}"
            for i, node in enumerate(recipe.compare)
            if node not in ids
        )
    if recipe is not None and recipe.task and recipe.task_settings:
        settings = _task_settings(recipe.task, recipe.task_settings, errors, flags)
        recipe = recipe.model_copy(update={"task_settings": settings})
    if errors or recipe is None:
        unique = list(dict.fromkeys(errors))  # a flag that set several steps: its error once
        # from flags, the recipe is the command line itself: no file to name
        raise RecipeError(("" if flags else f"{source}: ") + "; ".join(unique))
    return recipe.model_copy(update={"steps": [s for s in steps if s is not None]})


def _task_settings(
    name: str, raw: dict[str, Any], errors: list[str], flags: dict[str, str] | None
) -> dict[str, Any]:
    """The settings under ``task:``, validated by the model the task registers (only the keys
    given are kept, so a recipe written out reads as it was written)."""
    model = settings_model(name)
    if model is None:
        key = next(iter(raw))
        errors.append(f"task.{key}: the task '{name}' takes no settings")
        return raw
    try:
        return model.model_validate(raw).model_dump(mode="json", exclude_unset=True)
    except ValidationError as e:
        errors.extend(validation_errors(e, model, ("task",), flags))
        return raw


TRUST_KEY = "trust_checkpoint_code"


def load_recipe(
    source: str | Path | dict[str, Any],
    overrides: list[str] | None = None,
    flags: dict[str, str] | None = None,
) -> Recipe:
    """Read (file) or take (dict) a recipe, apply ``--set`` overrides, validate it whole.
    ``flags`` (recipe path → CLI flag) makes errors name the flags a shortcut command took."""
    if isinstance(source, dict):
        data, where = resolve_paths(source, Path.cwd()), "recipe"
    else:
        data, where = read_recipe_file(Path(source)), str(source)
        if TRUST_KEY in data:  # a file someone sent must not switch on code from checkpoints
            raise RecipeError(
                f"{source}: {TRUST_KEY} cannot be set in a recipe file (a file never chooses "
                "which code runs); drop it and pass --trust-checkpoint-code if you trust the "
                "checkpoints this recipe names"
            )
    if overrides:
        data = apply_overrides(data, overrides)
    return build_recipe(data, where, flags)


def dump_recipe(recipe: Recipe, path: Path) -> None:
    from modelpress.core.rundir import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(recipe.to_dict(), sort_keys=False))


__all__ = [
    "DataConfig",
    "EvaluateConfig",
    "Recipe",
    "Targets",
    "VerifyConfig",
    "apply_overrides",
    "build_recipe",
    "dump_recipe",
    "load_recipe",
    "read_recipe_file",
]
