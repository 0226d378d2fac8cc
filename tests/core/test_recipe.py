from pathlib import Path

import pytest
import yaml

from modelpress.core.recipe import apply_overrides, build_recipe, load_recipe
from modelpress.errors import RecipeError
from modelpress.steps.export import ExportConfig
from modelpress.steps.torchscript import TorchScriptConfig

BASE = {"model": "zoo:dscnn", "data": "builtin:digits"}


def test_minimal_recipe_fills_defaults() -> None:
    recipe = build_recipe(BASE)
    assert recipe.data.source == "builtin:digits"
    assert recipe.data.splits.validation == pytest.approx(0.2)
    assert recipe.evaluate.batch_sizes == [1, 32]
    assert recipe.steps == []


def test_steps_become_typed_configs_and_round_trip() -> None:
    recipe = build_recipe(
        {**BASE, "steps": [{"type": "torchscript"}, {"type": "export", "opset": 17}]}
    )
    assert isinstance(recipe.steps[0], TorchScriptConfig)
    assert isinstance(recipe.steps[1], ExportConfig)
    assert recipe.steps[1].opset == 17
    again = build_recipe(recipe.to_dict())
    assert again == recipe


def test_unknown_key_is_reported_with_its_path() -> None:
    with pytest.raises(RecipeError, match=r"evaluate\.repeets: unknown key"):
        build_recipe({**BASE, "evaluate": {"repeets": 5}})


def test_unknown_step_type_suggests_the_close_one() -> None:
    with pytest.raises(
        RecipeError, match=r"steps\.0\.type: unknown step type 'exprt' \(did you mean 'export'\?\)"
    ):
        build_recipe({**BASE, "steps": [{"type": "exprt"}]})


def test_wrong_value_type_in_a_step_names_the_field() -> None:
    with pytest.raises(RecipeError, match=r"steps\.1\.opset: Input should be a valid integer"):
        build_recipe(
            {**BASE, "steps": [{"type": "torchscript"}, {"type": "export", "opset": "new"}]}
        )


def test_all_errors_are_reported_together_on_one_line() -> None:
    with pytest.raises(RecipeError) as err:
        build_recipe(
            {
                "model": "zoo:dscnn",
                "data": "web:cats",
                "task": "regression",
                "steps": [{"type": "nope"}],
            }
        )
    message = str(err.value)
    assert "\n" not in message
    for part in ("data.source", "task:", "steps.0.type"):
        assert part in message


def test_bad_input_shape_and_duplicate_step_names() -> None:
    with pytest.raises(RecipeError, match=r"input_shape: '1,a,3' is not a shape"):
        build_recipe({**BASE, "input_shape": "1,a,3"})
    with pytest.raises(RecipeError, match=r"steps\.1\.name: 'export-onnx' is already"):
        build_recipe({**BASE, "steps": [{"type": "export"}, {"type": "export"}]})


def test_overrides_parse_yaml_values_and_reach_list_items() -> None:
    data = {**BASE, "steps": [{"type": "export"}]}
    out = apply_overrides(data, ["evaluate.repeats=7", "steps.0.opset=17", "task=binary"])
    assert out["evaluate"] == {"repeats": 7}
    assert out["steps"][0]["opset"] == 17
    assert data["steps"][0] == {"type": "export"}  # the input is not modified
    with pytest.raises(RecipeError, match="not an index"):
        apply_overrides(data, ["steps.3.opset=17"])
    with pytest.raises(RecipeError, match=r"key\.path=value"):
        apply_overrides(data, ["repeats"])


def test_recipe_file_paths_resolve_against_its_folder(tmp_path: Path, factory_file: Path) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "r.yaml").write_text(
        yaml.safe_dump(
            {
                "model": f"../{factory_file.name}:build",
                "weights": "w.pt",
                "data": "npz:data/x.npz",
                "out": "runs/a",
            }
        )
    )
    recipe = load_recipe(folder / "r.yaml")
    assert recipe.model == f"{factory_file.resolve()}:build"
    assert recipe.weights == str((folder / "w.pt").resolve())
    assert recipe.data.source == f"npz:{(folder / 'data/x.npz').resolve()}"


def test_missing_and_malformed_recipe_files(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
