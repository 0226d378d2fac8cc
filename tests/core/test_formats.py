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


# Computed on main before each export backend had its own config (commit 0c2505e), with the
# same code as below: the identity a --resume compares and every step's computation (what a
# node's key hashes), for each example recipe and for one export of every format × precision.
BEFORE = {
    "digits-compare/recipe.yaml": "eefbb654267487ea",
    "digits-int8/recipe.yaml": "232aca319ac9e532",
    "digits-onnx/recipe.yaml": "450f8bccbdf373fd",
    "every-export": "14547fb4db9ab76d",
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
# what a run's recipe.yaml held for every export step when one config had every format's keys
ONE_CONFIG = {
    "opset": 18,
    "dynamic_batch": True,
    "slim": True,
    "calibration": "minmax",
    "per_channel": True,
    "activation_type": "auto",
    "keep_fp32": [],
    "stem": "auto",
    "fallback": True,
    "float_tail": True,
}


def _fingerprint(recipe: Recipe, root: Path | None = None) -> str:
    text = json.dumps([recipe.identity(), [s.computation() for s in recipe.steps]], sort_keys=True)
    text = text.replace(str(root), "EXAMPLES") if root else text  # paths resolve absolute
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("recipe", sorted(EXAMPLES.glob("*/*.yaml")), ids=lambda p: p.parent.name)
def test_recipes_written_before_load_with_the_same_identity(recipe: Path) -> None:
    found = _fingerprint(load_recipe(recipe), EXAMPLES.resolve())
    assert found == BEFORE[f"{recipe.parent.name}/{recipe.name}"]


def test_every_export_keeps_its_node_key() -> None:
    assert _fingerprint(build_recipe(EVERY_EXPORT)) == BEFORE["every-export"]


def test_a_recipe_written_out_with_every_formats_keys_still_reads() -> None:
    """A run's recipe.yaml from before lists the ONNX keys for every export step; at their
    defaults they read (and keep the node key); set otherwise on a format without them, the
    key is named."""
    written = {
        **EVERY_EXPORT,
        "steps": [
            {**ONE_CONFIG, **s} if s["type"] == "export" else s for s in EVERY_EXPORT["steps"]
        ],
    }
    assert _fingerprint(build_recipe(written)) == BEFORE["every-export"]
    step = {"type": "export", "format": "openvino", **ONE_CONFIG, "opset": 17}
    with pytest.raises(RecipeError) as err:
        build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "steps": [step]}, "r.yaml")
    assert "steps.0.opset: a key of format: onnx only, not of format: openvino" in str(err.value)


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


def test_quantize_gives_each_backend_the_options_its_config_takes() -> None:
    from modelpress.cli.app import quantize_steps
    from modelpress.errors import ModelpressError

    made = quantize_steps(
        "static", ["onnx", "tflite", "openvino"], {"calibration": "entropy", "per_channel": False}
    )
    quantized = made[1::2]
    assert [s.get("calibration") for s in quantized] == ["entropy", None, None]
    assert [s.get("per_channel") for s in quantized] == [False, False, None]
    with pytest.raises(ModelpressError) as err:
        quantize_steps("static", ["openvino"], {"calibration": "entropy"})
    assert str(err.value) == (
        "--calibration: no format in --formats openvino takes it (the formats that do: onnx); "
        "drop it or add one of them"
    )
