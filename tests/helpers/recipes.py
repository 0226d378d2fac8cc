"""Small recipes and models the tests build runs from: each costs seconds, not minutes."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

# The costly analyses a run makes of every artifact (a fresh process per deployed file for its
# own-process peak, the int8 profile, the end-of-run races): off in a test that does not assert
# their figures, which then costs the pipeline alone.
ANALYSES_OFF = {"own_process_memory": False, "int8_coverage": False, "races": False}


def _switches(analyses: bool | Collection[str]) -> dict[str, bool]:
    """``evaluate:`` switches: all on (True), all off (False), or only the ones named on."""
    if analyses is True:
        return {}  # the defaults: every analysis on
    on = set() if analyses is False else set(analyses)
    unknown = on - set(ANALYSES_OFF)
    if unknown:
        raise ValueError(f"no analysis {sorted(unknown)}; one of {sorted(ANALYSES_OFF)}")
    return {name: name in on for name in ANALYSES_OFF}


def tiny_recipe(
    model: str, *, analyses: bool | Collection[str] = False, **extra: object
) -> dict[str, Any]:
    """A recipe dict that evaluates quickly (few repeats, small inputs), the costly analyses
    off unless ``analyses`` (True: all; or the names of those to run), also in an ``evaluate``
    given in ``extra`` (whose own switches win)."""
    recipe: dict[str, Any] = {
        "model": model,
        "data": "builtin:digits",
        "input_shape": "1,1,16,16",
        "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1, 8]},
    }
    recipe.update(extra)
    if isinstance(recipe.get("evaluate"), dict):
        recipe["evaluate"] = {**_switches(analyses), **recipe["evaluate"]}
    return recipe


def run_steps(
    model: Path,
    out: Path,
    *steps: dict,
    resume: bool = False,
    analyses: bool | Collection[str] = False,
) -> dict:
    """A tiny recipe of ``steps`` on half the digits (training steps' epochs stay short), run
    into ``out``: fresh, or resumed when ``resume``; the costly analyses only when
    ``analyses`` (as in ``tiny_recipe``)."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine import pipeline

    data = {"source": "builtin:digits", "max_samples": 900}
    recipe = tiny_recipe(str(model), analyses=analyses, data=data, steps=list(steps))
    recipe = build_recipe(recipe)
    return pipeline.run(recipe, out=out, resume=resume, force=not resume)


def train_mlp(path: Path, data: str, shape: str, hidden: list[int], epochs: int) -> str:
    """A zoo:mlp of ``hidden`` widths trained on ``data`` at ``shape`` (a second or two): the
    cheap stages cascade tests build bundles from. Its path, as a string."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    recipe = build_recipe(
        {"model": "zoo:mlp", "model_kwargs": {"hidden": hidden}, "data": data, "input_shape": shape}
    )
    train_and_save(recipe, TrainConfig(epochs=epochs, lr=3e-3, seed=0), path)
    return str(path)
