"""Shared fixtures: small models and data, so the suite stays fast on 2 cores. Functions the
tests share (the CLI in-process, small recipes) live in tests/helpers/, imported by name."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from helpers.recipes import tiny_recipe, train_mlp


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


@pytest.fixture(scope="session")
def manipulated_stages(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two cascade stages on builtin:digits-manipulated at 1,1,8,8, trained once for every
    cascade test that needs a cheap stage and a precise one: an MLP [8] of 2 epochs and an MLP
    [64] of 4. Their paths, fast first."""
    out = tmp_path_factory.mktemp("stages")
    return [
        train_mlp(out / f"{name}.pt", "builtin:digits-manipulated", "1,1,8,8", hidden, epochs)
        for name, hidden, epochs in (("fast", [8], 2), ("precise", [64], 4))
    ]


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models' ops are too small to share: a second thread only waits on the first, and
    on a loaded machine that waiting costs tens of seconds (``usefixtures`` it)."""
    from modelpress.core.process import torch_threads

    with torch_threads(1):
        yield
