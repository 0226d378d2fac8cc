from pathlib import Path

import pytest
import torch

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine.context import build_context
from modelpress.tasks import get_task
from modelpress.training import (
    Callback,
    TrainConfig,
    TrainingDiverged,
    evaluate_module,
    fit,
    recalibrate_batchnorm,
)


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
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # tensors and plain data only
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


def test_divergence_stops_with_a_clear_message_and_leaves_finite_weights() -> None:
    ctx, model = _setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def nan_loss(outputs: torch.Tensor, labels: torch.Tensor, inputs: list) -> torch.Tensor:
        return outputs.sum() * float("nan")

    cfg = TrainConfig(epochs=1, max_bad_batches=3)
    with pytest.raises(
        TrainingDiverged, match=r"training diverged: 3 non-finite batches.*lower lr"
    ):
        fit(model, ctx.data, ctx.task, cfg, loss_fn=nan_loss, threads=2)
    for k, v in model.state_dict().items():  # never a NaN model: the last finite weights
        assert torch.equal(v, before[k]), k


def test_a_few_bad_batches_are_skipped_and_lower_the_learning_rate() -> None:
    ctx, model = _setup()
    calls = {"n": 0}
    ce = torch.nn.CrossEntropyLoss()

    def flaky(outputs: torch.Tensor, labels: torch.Tensor, inputs: list) -> torch.Tensor:
        calls["n"] += 1
        loss = ce(outputs, labels)
        return loss * float("inf") if calls["n"] in (3, 5) else loss  # two poisoned batches

    cfg = TrainConfig(epochs=4, lr=5e-3, scheduler="none", nan_lr_factor=0.9)
    result = fit(model, ctx.data, ctx.task, cfg, loss_fn=flaky, threads=2)
    assert result.bad_batches == 2
    assert [h["lr"] for h in result.history] == pytest.approx([5e-3 * 0.81] * 4)
    assert all(
        torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point()
    )
    assert result.best_metric >= 0.8


def test_sam_trains_to_the_same_accuracy_band() -> None:
    ctx, model = _setup()
    result = fit(model, ctx.data, ctx.task, TrainConfig(epochs=4, lr=5e-3, sam=True), threads=2)
    assert result.best_metric >= 0.85


def test_callbacks_see_every_epoch_and_step_and_their_facts_join_the_history() -> None:
    ctx, model = _setup()
    seen: dict[str, list] = {"epochs": [], "steps": []}

    class Probe(Callback):
        def on_epoch_start(self, epoch: int, model: torch.nn.Module) -> dict:
            seen["epochs"].append(epoch)
            return {"probe": epoch * 10}

        def on_step_end(self, model: torch.nn.Module) -> None:
            seen["steps"].append(1)

    cfg = TrainConfig(epochs=2, batch_size=128)
    result = fit(model, ctx.data, ctx.task, cfg, callbacks=[Probe()], threads=2)
    batches = -(-len(ctx.data.train) // 128)
    assert seen["epochs"] == [0, 1] and len(seen["steps"]) == 2 * batches
    assert [h["probe"] for h in result.history] == [0, 10]


def test_a_loss_with_parameters_trains_them_too() -> None:
    ctx, model = _setup()

    class Scaled(torch.nn.Module):  # a learnable logit scale, as feature projections are
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(
            self, outputs: torch.Tensor, labels: torch.Tensor, inputs: list
        ) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(outputs * self.scale, labels)

    loss = Scaled()
    fit(model, ctx.data, ctx.task, TrainConfig(epochs=1, lr=5e-2), loss_fn=loss, threads=2)
    assert loss.scale.item() != 1.0


def test_binary_training_with_one_logit_head() -> None:
    ctx, model = _setup(
        "zoo:mlp", data="builtin:breast_cancer", input_shape=None, model_kwargs={"num_classes": 1}
    )
    result = fit(model, ctx.data, get_task("binary"), TrainConfig(epochs=5, lr=3e-3), threads=2)
    assert result.metric == "auc" and result.best_metric >= 0.95


def test_a_checkpoint_resumes_only_under_the_same_resume_key(tmp_path: Path) -> None:
    ctx, model = _setup()
    cfg = TrainConfig(epochs=1, lr=5e-3)
    fit(model, ctx.data, ctx.task, cfg, checkpoint_dir=tmp_path, resume_key={"T": 4}, threads=2)
    _, same = _setup()
    kept = fit(same, ctx.data, ctx.task, cfg, checkpoint_dir=tmp_path, resume_key={"T": 4})
    _, other = _setup()
    fresh = fit(other, ctx.data, ctx.task, cfg, checkpoint_dir=tmp_path, resume_key={"T": 2})
    assert kept.resumed_from == 1 and fresh.resumed_from is None


def test_recalibrated_batchnorm_holds_the_plain_average_over_the_samples() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    x = torch.randn(96, 1, 8, 8) * 3 + 2
    assert recalibrate_batchnorm(model, [x], batch_size=32, max_samples=64)  # 2 of 3 batches
    with torch.no_grad():
        first = model[0](x[:64])
    bn = model[1]
    means = first.reshape(2, 32, 4, 6, 6).mean(dim=(1, 3, 4))  # one mean per batch
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    assert bn.momentum == 0.1 and not model.training  # put back as it was
    assert not recalibrate_batchnorm(torch.nn.Linear(2, 2), [torch.randn(8, 2)], 4, 8)


def test_precise_batchnorm_lifts_an_eval_mode_model_off_chance_after_a_short_schedule() -> None:
    data = {"source": "builtin:digits", "max_samples": 600}
    top1 = {}
    for precise in (0, 1024):
        ctx, model = _setup(data=data)  # the same initial weights each time (the recipe's seed)
        cfg = TrainConfig(epochs=3, lr=1e-2, precise_bn=precise)
        top1[precise] = fit(model, ctx.data, ctx.task, cfg, threads=2).best_metric
    # 420 training samples, 21 steps: the running averages still hold their initial values
    assert top1[0] < 0.3 and top1[1024] > top1[0] + 0.2


def _starved(model: torch.nn.Module) -> torch.nn.Module:
    """Every BatchNorm γ drawn from N(0, 0.02) and TensorFlow's momentum 0.99, as transformers'
    EfficientNet initialises them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.normal_(0.0, 0.02)
                m.momentum = 0.99
    return model


def test_norm_layers_that_start_near_zero_are_named_and_reset_norm_makes_the_model_learn() -> None:
    from modelpress.core.observer import Observer
    from modelpress.training.norm_init import inspect_norms

    class Seen(Observer):
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []

        def event(self, kind: str, message: str, **fields: object) -> None:
            self.events.append((kind, message))

    data = {"source": "builtin:digits", "max_samples": 600}
    best, said = {}, {}
    for kind in ("as built", "starved", "reset"):
        ctx, model = _setup(data=data)  # the same initial weights each time (the recipe's seed)
        if kind != "as built":
            found = inspect_norms(_starved(model))
            assert found.starves and found.near_zero == found.layers >= 4 and found.tf_momentum
        seen = Seen()
        cfg = TrainConfig(epochs=3, lr=1e-2, reset_norm=kind == "reset")
        best[kind] = fit(model, ctx.data, ctx.task, cfg, threads=2, observer=seen).best_metric
        said[kind] = seen.events
    # the reset gives back the model as PyTorch builds it (γ=1, β=0); starved, it crawls (and
    # transformers' EfficientNet, with ~30 such layers, stays at chance)
    assert best["reset"] == pytest.approx(best["as built"], abs=0.05)
    assert best["starved"] <= best["as built"] - 0.2
    said[False] = said["starved"]
    warned = [m for k, m in said[False] if k == "warning"]
    assert any("start with weights near 0" in m and "--reset-norm" in m for m in warned)
    assert any("momentum > 0.5" in m for m in warned)
    assert not inspect_norms(model).problems()  # after the reset: γ=1, momentum 0.01


def test_a_zero_initialised_residual_gamma_is_not_a_problem() -> None:
    """γ exactly 0 on the last BatchNorm of each residual block is a known good start
    (zero_init_residual); only weights drawn near 0 are named."""
    from modelpress.training.norm_init import inspect_norms

    _ctx, model = _setup()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms[1::2]:
            m.weight.zero_()
    assert inspect_norms(model).problems() == []


def test_transformers_efficientnet_as_initialised_is_named_and_reset() -> None:
    """The cause behind a transformers EfficientNet staying at chance on digits: its
    _init_weights draws BatchNorm γ from N(0, 0.02) and passes TensorFlow's momentum 0.99."""
    transformers = pytest.importorskip("transformers")
    from modelpress.training.norm_init import inspect_norms, reset_norms

    config = transformers.EfficientNetConfig(image_size=32, num_labels=10, depth_coefficient=0.3)
    model = transformers.EfficientNetForImageClassification(config)
    found = inspect_norms(model)
    assert found.starves and found.mean_abs < 0.05 and found.tf_momentum > 0
    assert "EfficientNetForImageClassification (transformers)" in found.problems()[0]
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        before = model.train()(x).logits.std(0).mean()
        reset_norms(model)
        after = model(x).logits.std(0).mean()
    assert before < 1e-6 < 1e-3 < after  # the signal reaches the logits again
    assert inspect_norms(model).problems() == []
