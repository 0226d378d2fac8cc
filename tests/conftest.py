"""Shared fixtures: small models and data, so the suite stays fast on 2 cores."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture
def factory_file(tmp_path: Path) -> Path:
    """A user model file with a factory, as a user would write one."""
    path = tmp_path / "my_model.py"
    path.write_text(
        textwrap.dedent(
            """
            from torch import nn


            class Net(nn.Module):
                def __init__(self, num_classes=10, hidden=32):
                    super().__init__()
                    self.body = nn.Sequential(
                        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                        nn.Flatten(), nn.Linear(128, hidden), nn.ReLU(),
                    )
                    self.head = nn.Linear(hidden, num_classes)

                def forward(self, x):
                    return self.head(self.body(x))


            def build(num_classes=10, hidden=32):
                return Net(num_classes, hidden)


            def not_a_module():
                return 42
            """
        )
    )
    return path


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dscnn trained for a few epochs on digits at 16×16 with `modelpress train`'s code path."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    out = tmp_path_factory.mktemp("ckpt") / "dscnn.pt"
    recipe = build_recipe(
        {
            "model": "zoo:dscnn",
            "model_kwargs": {"width_mult": 0.5},
            "data": "builtin:digits",
            "input_shape": "1,1,16,16",
        }
    )
    train_and_save(recipe, TrainConfig(epochs=6, lr=5e-3, seed=0), out)
    return out


@pytest.fixture
def ctx_and_model(trained_checkpoint: Path) -> tuple:
    """(Context, baseline Artifact) of the trained dscnn, fresh for each test."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.context import build_context

    return build_context(build_recipe(tiny_recipe(str(trained_checkpoint))))


@pytest.fixture(scope="session")
def trained_mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLP on the flat 8×8 digits with enough weights (~50K) for int8 to pay off in size."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    out = tmp_path_factory.mktemp("mlp") / "mlp.pt"
    recipe = build_recipe(
        {"model": "zoo:mlp", "model_kwargs": {"hidden": [256, 128]}, "data": "builtin:digits"}
    )
    train_and_save(recipe, TrainConfig(epochs=8, lr=3e-3, seed=0), out)
    return out


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


def tiny_recipe(model: str, **extra: object) -> dict:
    """A recipe dict that evaluates quickly (few repeats, small inputs)."""
    recipe = {
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


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models' ops are too small to share: a second thread only waits on the first, and
    on a loaded machine that waiting costs tens of seconds (``usefixtures`` it)."""
    from modelpress.core.process import torch_threads

    with torch_threads(1):
        yield


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (typer's CliRunner), for error cases: exit code, stdout and
    stderr as a subprocess would give them, without a new interpreter's start-up."""
    from typer.testing import CliRunner

    from modelpress.cli.app import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
