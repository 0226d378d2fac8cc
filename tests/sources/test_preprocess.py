"""``data.preprocess``: images fed as the model was trained on them (resize the shorter side,
crop the centre, channel order, mean/std)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelpress.core.recipe import build_recipe
from modelpress.engine.context import build_context
from modelpress.errors import RecipeError


def _folder(root: Path) -> Path:
    """Two classes of 80×40 images: red side quarters around a green middle half."""
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(8):
            arr = np.zeros((40, 80, 3), np.uint8)
            arr[:, :20, 0] = arr[:, 60:, 0] = 255  # red left and right
            arr[:, 20:60, 1] = 200 + i  # green middle
            Image.fromarray(arr).save(root / label / f"{i}.png")
    return root


def _inputs(root: Path, **data: object) -> np.ndarray:
    recipe = {"model": "zoo:mlp", "data": {"source": f"folder:{root}", **data}}
    ctx, _ = build_context(build_recipe({**recipe, "input_shape": "1,3,32,32"}))
    return ctx.data.validation.inputs[0]


def test_resize_and_centre_crop_keep_the_middle_and_bgr_swaps_the_colours(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    squashed = _inputs(root)
    cropped = _inputs(root, preprocess={"resize": 32})
    assert squashed[:, 0].mean() > 0.3  # the red sides squeezed in
    assert cropped[:, 0].mean() < 0.01 and cropped[:, 1].mean() > 0.75  # the green middle
    bgr = _inputs(root, preprocess={"channels": "bgr"})
    np.testing.assert_allclose(bgr[:, 2], squashed[:, 0])  # red is the last channel now
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    normed = _inputs(root, preprocess={"resize": 32, "mean": mean, "std": std})
    np.testing.assert_allclose(normed, (cropped - 0.5) / 0.25, atol=1e-5)


def test_normalize_given_twice_or_a_mean_without_std_is_refused(tmp_path: Path) -> None:
    base = {"model": "zoo:mlp", "input_shape": "1,3,32,32"}
    with pytest.raises(RecipeError, match="mean and std go together"):
        build_recipe({**base, "data": {"source": "builtin:digits", "preprocess": {"mean": [0.5]}}})
    with pytest.raises(RecipeError, match="normalize and preprocess"):
        build_recipe(
            {
                **base,
                "data": {
                    "source": "builtin:digits",
                    "normalize": {"mean": [0.5], "std": [0.5]},
                    "preprocess": {"mean": [0.5], "std": [0.5]},
                },
            }
        )


def test_the_preprocess_flag_sets_data_preprocess_and_a_bad_value_names_the_flag(
    tmp_path: Path,
) -> None:
    import yaml

    from helpers.cli import run_cli

    root = _folder(tmp_path / "imgs")
    saved = tmp_path / "r.yaml"
    result = run_cli(
        "export", "zoo:mlp", "--data", f"folder:{root}", "--input-shape", "1,3,32,32",
        "--preprocess", "resize=32,channels=bgr,mean=0.5/0.5/0.5,std=0.25/0.25/0.25",
        "--format", "onnx", "--out", str(tmp_path / "run"), "--save-recipe", str(saved),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load(saved.read_text())["data"]["preprocess"]
    assert written["resize"] == 32 and written["channels"] == "bgr"
    assert written["mean"] == [0.5, 0.5, 0.5]
    for value, said in (
        ("resize=big", "--preprocess: Input should be a valid integer"),
        ("resize", "--preprocess: 'resize' is not KEY=VALUE"),
    ):
        bad = run_cli(
            "export", "zoo:mlp", "--data", f"folder:{root}", "--input-shape", "1,3,32,32",
            "--preprocess", value, "--out", str(tmp_path / "bad"),
        )  # fmt: skip
        assert bad.returncode == 2 and said in bad.stderr, bad.stderr
