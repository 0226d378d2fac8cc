"""``engine/preflight``: what a step needs that shows before any model runs, raised before the
baseline is measured: an input it cannot take, a teacher, student or layer that does not exist."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.recipe import build_recipe
from modelpress.engine.preflight import check_steps
from modelpress.errors import RecipeError, StepError


class _Ctx:
    """What the checks ask of a Context: models built from sources (counted)."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def load_model(self, source: str, *args: Any, **kwargs: Any) -> tuple[nn.Module, None]:
        self.built.append(source)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), None


def _steps(*steps: dict) -> list:
    return build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "steps": list(steps)}).steps


ONNX = Artifact("baseline", "onnx", [], "fp32")
TORCH = Artifact("baseline", "torch", [], "fp32", module=nn.Sequential(nn.Linear(64, 10)))


def test_a_step_from_a_baseline_it_cannot_take_is_named() -> None:
    steps = _steps({"type": "prune", "method": "l1-unstructured", "from": "baseline"})
    with pytest.raises(StepError) as err:
        check_steps(steps, _Ctx(), ONNX)  # type: ignore[arg-type]
    assert str(err.value) == (
        "prune-l1-unstructured: `prune` takes an fp32 torch model; `baseline` is an onnx fp32 "
        "artifact (from: baseline)"
    )


def test_a_step_no_earlier_node_can_feed_is_named_with_what_there_is() -> None:
    steps = _steps({"type": "export", "format": "onnx", "precision": "int8"}, {"type": "prune"})
    with pytest.raises(StepError) as err:
        check_steps(steps, _Ctx(), ONNX)  # type: ignore[arg-type]
    assert str(err.value) == (
        "prune: needs an fp32 torch model, and the run has none (`baseline` is an onnx fp32 "
        "artifact; `export-onnx-int8` makes an onnx model); add a step that makes one before it, "
        "or remove it"
    )


def test_keep_names_are_looked_up_in_the_baseline_only_when_it_is_the_input() -> None:
    keep = {"type": "prune", "keep": ["head"]}
    with pytest.raises(StepError, match="prune: keep names module 'head'"):
        check_steps(_steps(keep), _Ctx(), TORCH)  # type: ignore[arg-type]
    after_distill = _steps({"type": "distill", "student": "zoo:mlp", "epochs": 1}, keep)
    ctx = _Ctx()
    check_steps(after_distill, ctx, TORCH)  # type: ignore[arg-type]  # its input: the student
    assert ctx.built == ["zoo:mlp"]  # the student was built (and checked), once


def test_gradual_pruning_settings_are_recipe_errors() -> None:
    """Regression: both were StepErrors raised after the baseline was measured."""
    with pytest.raises(RecipeError, match=r"steps\.0: method gradual prunes while training; set"):
        _steps({"type": "prune", "method": "gradual", "finetune_epochs": 0})
    with pytest.raises(RecipeError, match=r"sparsity_init \(0.6\) must be below ratio \(0.5\)"):
        _steps({"type": "prune", "method": "gradual", "sparsity_init": 0.6})
