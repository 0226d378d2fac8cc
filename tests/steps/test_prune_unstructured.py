import pytest
import torch
from torch import nn

from modelpress.errors import StepError
from modelpress.steps.prune.unstructured import (
    GradualMagnitude,
    OneShot,
    apply_masks,
    global_l1_masks,
    prunable_weights,
    sparsity_at,
    sparsity_of,
)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),  # 216 weights
        nn.BatchNorm2d(8),  # not prunable
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),  # 1280 weights
    )


def _weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for _, m in prunable_weights(model)])


def test_polynomial_schedule_by_hand() -> None:
    # init 0, target 0.8, 5 epochs: n = 4, s_t = 0.8 + (0 - 0.8) * (1 - t/4)^3
    expected = [
        0.0,
        0.8 - 0.8 * 0.75**3,  # 0.4625
        0.8 - 0.8 * 0.5**3,  # 0.7
        0.8 - 0.8 * 0.25**3,  # 0.7875
        0.8,
    ]
    got = [sparsity_at(e, 5, 0.0, 0.8, "polynomial") for e in range(5)]
    assert got == pytest.approx(expected)
    assert got[1] == pytest.approx(0.4625)
    assert got == sorted(got) and got[-1] == 0.8


def test_exponential_schedule_by_hand() -> None:
    # init 0.2, target 0.8, 5 epochs: s_t = 1 - 0.8 * (0.2 / 0.8)^(t/4)
    expected = [0.2, 1 - 0.8 * 0.25**0.25, 0.6, 1 - 0.8 * 0.25**0.75, 0.8]
    got = [sparsity_at(e, 5, 0.2, 0.8, "exponential") for e in range(5)]
    assert got == pytest.approx(expected)
    assert got[1] == pytest.approx(0.43431, abs=1e-5)
    assert got == sorted(got) and got[-1] == 0.8


def test_schedule_edges() -> None:
    assert sparsity_at(0, 1, 0.0, 0.5, "polynomial") == 0.5  # one epoch: straight to target
    assert sparsity_at(7, 5, 0.0, 0.5, "exponential") == 0.5  # past the end: stays at target


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (0, 5, 0.0, 1.0, "polynomial"),
            r"target sparsity must be between 0 and 1 \(exclusive\), got 1\.0",
        ),
        (
            (0, 5, 0.0, 0.0, "polynomial"),
            r"target sparsity must be between 0 and 1 \(exclusive\), got 0\.0",
        ),
        ((0, 5, -0.1, 0.5, "polynomial"), r"initial sparsity must be in \[0, 1\), got -0\.1"),
        (
            (0, 5, 0.6, 0.5, "polynomial"),
            r"initial sparsity \(0\.6\) must be below the target sparsity \(0\.5\)",
        ),
        ((0, 0, 0.0, 0.5, "polynomial"), r"epochs must be an integer >= 1, got 0"),
        ((0, 5, 0.0, 0.5, "cubic"), r"unknown schedule 'cubic'; known: polynomial, exponential"),
        ((-1, 5, 0.0, 0.5, "polynomial"), r"epoch must be an integer >= 0, got -1"),
    ],
)
def test_schedule_validation(args: tuple, message: str) -> None:
    with pytest.raises(StepError, match=rf"^prune: {message}$"):
        sparsity_at(*args)


def test_global_masks_hit_the_sparsity_and_rank_across_layers() -> None:
    model = _tiny()
    total = 216 + 1280
    masks = global_l1_masks(model, 0.7)
    kept = torch.cat([masks[name].flatten() for name, _ in prunable_weights(model)])
    magnitudes = _weights(model).abs()

    assert set(masks) == {"0", "4"}
    assert abs(int((~kept).sum()) - 0.7 * total) <= 1
    assert magnitudes[~kept].max() <= magnitudes[kept].min()  # one global threshold
    apply_masks(model, masks)
    assert abs(sparsity_of(model) - 0.7) <= 1 / total
    assert set(model.state_dict()) == set(_tiny().state_dict())  # no weight_orig / weight_mask


def test_sparsity_of_counts_exact_zeros() -> None:
    model = _tiny()
    assert sparsity_of(model) == 0.0
    with torch.no_grad():
        model[0].weight.zero_()
    assert sparsity_of(model) == pytest.approx(216 / (216 + 1280))


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 6, 6)), torch.tensor([0, 1, 2, 3]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_masks_survive_optimizer_steps() -> None:
    model = _tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    pruner = GradualMagnitude(0.0, 0.6, epochs=3, schedule="polynomial")

    assert pruner.on_epoch_start(0, model) == {"sparsity": 0.0}
    facts = pruner.on_epoch_start(1, model)
    zeros = _weights(model) == 0
    for _ in range(3):
        _train_step(model, optimizer)
        pruner.on_step_end(model)
        assert torch.all(_weights(model)[zeros] == 0)

    assert facts["sparsity"] == pytest.approx(0.6 - 0.6 * 0.5**3)
    assert sparsity_of(model) == pytest.approx(facts["sparsity"], abs=1 / zeros.numel())
    # Without on_step_end, momentum brings pruned weights back: the callback is what holds them.
    _train_step(model, optimizer)
    assert not torch.all(_weights(model)[zeros] == 0)
    assert pruner.on_epoch_start(2, model) == {"sparsity": 0.6}
    assert sparsity_of(model) == pytest.approx(0.6, abs=1 / zeros.numel())


def test_one_shot_fixes_masks_at_the_first_epoch() -> None:
    model = _tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner = OneShot(0.5)
    smallest = global_l1_masks(model, 0.5)

    for epoch in range(2):
        assert pruner.on_epoch_start(epoch, model) == {"sparsity": 0.5}
        _train_step(model, optimizer)
        pruner.on_step_end(model)
        # The weights that were smallest before training, every epoch: not re-ranked.
        for name, module in prunable_weights(model):
            assert torch.equal(module.weight == 0, ~smallest[name])
    assert sparsity_of(model) == pytest.approx(0.5, abs=1 / (216 + 1280))


@pytest.mark.parametrize("sparsity", [0, 1, 1.2, True])
def test_one_shot_sparsity_out_of_range(sparsity: float) -> None:
    with pytest.raises(
        StepError,
        match=rf"^prune-2: sparsity must be between 0 and 1 \(exclusive\), got {sparsity}$",
    ):
        OneShot(sparsity, where="prune-2")
