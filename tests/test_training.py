from pathlib import Path

import pytest
import torch

from conftest import tiny_recipe
from modelpress.core.context import build_context
from modelpress.core.recipe import build_recipe
from modelpress.errors import ModelpressError
from modelpress.training import TrainConfig, evaluate_module, fit


def _setup(model: str = "zoo:dscnn", **kw: object):
    ctx, base = build_context(
        build_recipe(tiny_recipe(model, **{"model_kwargs": {"width_mult": 0.5}, **kw}))
    )
    return ctx, base.module


def test_fit_learns_digits_and_keeps_the_best_epoch() -> None:
    ctx, model = _setup()
    before = evaluate_module(model, ctx.data, ctx.task, 2)["top1"]
    result = fit(model, ctx.data, ctx.task, TrainConfig(epochs=4, lr=5e-3), threads=2)
    after = evaluate_module(model, ctx.data, ctx.task, 2)["top1"]
    assert before < 0.3 and after >= 0.85
    assert len(result.history) == 4 and result.metric == "top1"
    assert after == pytest.approx(result.best_metric)  # best weights restored
    assert result.best_metric == max(h["top1"] for h in result.history)


def test_checkpoint_resumes_where_it_stopped(tmp_path: Path) -> None:
    ctx, model = _setup()
    cfg2, cfg4 = TrainConfig(epochs=2, lr=5e-3), TrainConfig(epochs=4, lr=5e-3)
    fit(model, ctx.data, ctx.task, cfg4, checkpoint_dir=tmp_path, threads=2)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["epoch"] == 4
    _, again = _setup()
    resumed = fit(again, ctx.data, ctx.task, cfg4, checkpoint_dir=tmp_path, threads=2)
    assert resumed.resumed_from == 4 and len(resumed.history) == 4  # nothing left to train
    _, other = _setup()
    fresh = fit(other, ctx.data, ctx.task, cfg2, checkpoint_dir=tmp_path, threads=2)
    assert fresh.resumed_from is None  # another config never resumes a stale checkpoint


def test_early_stopping_stops_after_patience() -> None:
    ctx, model = _setup()
    cfg = TrainConfig(epochs=30, lr=1e-9, early_stopping=2, scheduler="none")  # cannot improve
    result = fit(model, ctx.data, ctx.task, cfg, threads=2)
    assert result.stopped_early and len(result.history) == 3


def test_divergence_stops_with_a_clear_message() -> None:
    ctx, model = _setup()

    def nan_loss(outputs: torch.Tensor, labels: torch.Tensor, inputs: list) -> torch.Tensor:
        return outputs.sum() * float("nan")

    with pytest.raises(
        ModelpressError, match=r"training diverged at epoch 1.*lower the learning rate"
    ):
        fit(model, ctx.data, ctx.task, TrainConfig(epochs=1), loss_fn=nan_loss, threads=2)


def test_binary_training_with_one_logit_head() -> None:
    ctx, model = _setup(
        "zoo:mlp", data="builtin:breast_cancer", input_shape=None, model_kwargs={"num_classes": 1}
    )
    result = fit(model, ctx.data, "binary", TrainConfig(epochs=5, lr=3e-3), threads=2)
    assert result.metric == "auc" and result.best_metric >= 0.95
