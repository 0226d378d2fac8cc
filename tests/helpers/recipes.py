"""Small recipes and models the tests build runs from: each costs seconds, not minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_recipe(model: str, **extra: object) -> dict[str, Any]:
    """A recipe dict that evaluates quickly (few repeats, small inputs)."""
    recipe: dict[str, Any] = {
        "model": model,
        "data": "builtin:digits",
        "input_shape": "1,1,16,16",
        "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1, 8]},
    }
    recipe.update(extra)
    return recipe


def run_steps(model: Path, out: Path, *steps: dict, resume: bool = False) -> dict:
    """A tiny recipe of ``steps`` on half the digits (training steps' epochs stay short), run
    into ``out``: fresh, or resumed when ``resume``."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine import pipeline

    data = {"source": "builtin:digits", "max_samples": 900}
    recipe = build_recipe(tiny_recipe(str(model), data=data, steps=list(steps)))
    return pipeline.run(recipe, out=out, resume=resume, force=not resume)


def train_mlp(path: Path, data: str, shape: str, hidden: list[int], epochs: int) -> str:
    """A zoo:mlp of ``hidden`` widths trained on ``data`` at ``shape`` (a second or two): the
    cheap stages cascade tests build bundles from. Its path, as a string."""
    from modelpress.core.recipe import build_recipe
    from modelpress.training import TrainConfig, train_and_save

    recipe = build_recipe(
        {"model": "zoo:mlp", "model_kwargs": {"hidden": hidden}, "data": data, "input_shape": shape}
    )
    train_and_save(recipe, TrainConfig(epochs=epochs, lr=3e-3, seed=0), path)
    return str(path)
