"""A search's deadline cuts a step off mid-work (not only training at an epoch): the node is
recorded failed with the reason, and the runner goes on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import pytest

from helpers.recipes import ANALYSES_OFF
from modelpress.core import registry
from modelpress.core.observer import Observer
from modelpress.core.recipe import load_recipe
from modelpress.core.registry import StepConfig, register_step
from modelpress.engine.pipeline import Runner


class _SlowConfig(StepConfig):
    type: Literal["test-slow"] = "test-slow"
    seconds: float = 5.0


@pytest.fixture
def slow_step():
    @register_step(_SlowConfig)
    def _slow(artifact, config, ctx):
        end = time.monotonic() + config.seconds
        while time.monotonic() < end:  # Python work, as an export's or calibration's loop
            time.sleep(0.01)
        return artifact

    yield _SlowConfig
    registry._REGISTRY.pop("test-slow", None)


def test_a_step_running_past_the_deadline_is_cut_off_and_recorded(
    tmp_path: Path, slow_step: type[StepConfig]
) -> None:
    recipe = load_recipe(
        {
            "model": "zoo:mlp",
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
            "evaluate": {"repeats": 3, "warmup": 0, "batch_sizes": [1], **ANALYSES_OFF},
        }
    )
    runner = Runner(recipe, tmp_path / "run", Observer(), False)
    runner.start()
    runner.ctx.deadline = time.monotonic() + 0.5
    t0 = time.monotonic()
    entry = runner.add_step(slow_step(id="slow", seconds=5.0))
    took = time.monotonic() - t0
    assert took < 3.0
    assert entry["status"] == "failed"
    assert "slow: stopped: the search's time budget ran out during this step" in entry["error"]
    runner.ctx.deadline = None  # no deadline: the same step runs to its end
    done = runner.add_step(slow_step(id="quick", seconds=0.1))
    # ran to its end: measured (an untrained MLP at chance on the digits is `collapsed`)
    assert done["status"] != "failed" and done["error"] is None and done["artifact"]
