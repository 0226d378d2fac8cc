"""One table of formats × precisions (core/formats.py): the export step refuses a pair the table
lacks before any work, ``quantize``/``compare``/``optimize`` build their steps from it, and a
recipe written before the table still loads with the same run identity and node keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import get_args

import pytest

from helpers.cli import run_cli
from modelpress.core.artifact import Precision
from modelpress.core.formats import EXPORT_PRECISIONS, METHOD_PRECISION, not_exported
from modelpress.core.recipe import Recipe, build_recipe, load_recipe
from modelpress.errors import RecipeError

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_table_names_only_known_precisions() -> None:
    assert {p for ps in EXPORT_PRECISIONS.values() for p in ps} <= set(get_args(Precision))
    assert set(METHOD_PRECISION.values()) <= set(get_args(Precision))
    assert not_exported("onnx", "int8-dynamic") is None


def test_a_precision_the_format_lacks_is_refused_before_any_work() -> None:
    step = {"type": "export", "format": "openvino", "precision": "int8-dynamic"}
    with pytest.raises(RecipeError) as err:
        build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "steps": [step]}, "r.yaml")
    assert str(err.value) == (
        "r.yaml: steps.0: openvino exports fp32, fp16 or int8 only; int8-dynamic is exported "
        "by onnx, tflite"
    )


def test_quantize_cli_names_the_format_that_lacks_the_method(tmp_path: Path) -> None:
    result = run_cli(
        "quantize", "zoo:mlp", "--data", "builtin:digits", "--method", "dynamic",
        "--formats", "onnx,openvino", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert "--formats: openvino exports fp32, fp16 or int8 only" in said
    assert "Traceback" not in said and not (tmp_path / "run").exists()


def test_compare_leaves_out_a_technique_the_format_lacks_and_says_so() -> None:
    from modelpress import techniques as tech

    steps, compared = tech.steps(
        ["dynamic", "static"], ["onnx", "openvino"], epochs=1, student=None
    )
    assert "dynamic-openvino" not in compared and {"dynamic-onnx", "static-openvino"} <= set(
        compared
    )
    build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "steps": steps})  # all valid
    assert tech.left_out(["dynamic", "static"], ["onnx", "openvino"]) == [
        "dynamic left out for openvino: openvino exports fp32, fp16 or int8 only; "
        "int8-dynamic is exported by onnx, tflite"
    ]


def test_optimize_default_space_tries_what_every_chosen_format_exports() -> None:
    from modelpress.cli.optimize import default_space

    space = default_space("zoo:mlp", {}, ["onnx", "openvino"], 1, None, {})
    assert space["export"] == {
        "format": ["onnx", "openvino"],
        "precision": ["fp32", "fp16", "int8"],
    }


# Computed on main before the table (commit 15a4376), with the same code as below: the identity
# a --resume compares, every step's computation (what a node's key hashes) and the recipe as
# written out, for each example recipe and for one export of every format × precision.
BEFORE = {
    "digits-compare/recipe.yaml": "a6b5baba018bce24",
    "digits-int8/recipe.yaml": "a06ec7772a73e736",
    "digits-onnx/recipe.yaml": "c07b63ff04f54582",
    "every-export": "de43ffc2ac0af864",
}
EVERY_EXPORT = {
    "model": "zoo:mlp",
    "data": "builtin:digits",
    "steps": [
        {"type": "export", "id": f"{f}-{p}", "from": "baseline", "format": f, "precision": p}
        for f, ps in EXPORT_PRECISIONS.items()
        for p in ps
    ]
    + [{"type": "quantize", "id": m, "from": "baseline", "method": m} for m in METHOD_PRECISION],
}


def _fingerprint(recipe: Recipe, root: Path | None = None) -> str:
    text = json.dumps(
        [recipe.identity(), [s.computation() for s in recipe.steps], recipe.to_dict()],
        sort_keys=True,
    )
    text = text.replace(str(root), "EXAMPLES") if root else text  # paths resolve absolute
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("recipe", sorted(EXAMPLES.glob("*/*.yaml")), ids=lambda p: p.parent.name)
def test_recipes_written_before_load_with_the_same_identity(recipe: Path) -> None:
    found = _fingerprint(load_recipe(recipe), EXAMPLES.resolve())
    assert found == BEFORE[f"{recipe.parent.name}/{recipe.name}"]


def test_every_export_keeps_its_node_key() -> None:
    assert _fingerprint(build_recipe(EVERY_EXPORT)) == BEFORE["every-export"]


@pytest.mark.parametrize(
    ("fmt", "io", "said"),
    [
        ("openvino", "uint8", "io uint8 applies to formats onnx and tflite"),
        ("onnx", "float", "io float applies to format tflite"),
    ],
)
def test_an_input_type_the_format_does_not_take_is_refused(fmt: str, io: str, said: str) -> None:
    step = {"type": "export", "format": fmt, "io": io}
    with pytest.raises(RecipeError) as err:
        build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "steps": [step]}, "r.yaml")
    assert str(err.value) == f"r.yaml: steps.0: {said}"


def test_quantize_gives_io_only_to_the_formats_that_take_it() -> None:
    from modelpress.cli.app import quantize_steps

    made = quantize_steps("static", ["onnx", "tflite", "openvino"], {"io": "float"})
    assert [s.get("io") for s in made] == [None, None, None, "float", None, None]
