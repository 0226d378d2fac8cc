"""Tests for the reference architectures in ``modelpress.zoo`` and their registry."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from modelpress import zoo
from modelpress.errors import ModelSourceError

ALL_NAMES = sorted(zoo.ZOO)
# the models whose output is one (B, num_classes) tensor; the detector has its own tests
CLASS_NAMES = [n for n in ALL_NAMES if zoo.get(n).task is None]
WIDTH_NAMES = [
    n for n in ALL_NAMES if "width_mult" in inspect.signature(zoo.get(n).factory).parameters
]


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _input(entry: zoo.ZooEntry, batch: int, in_channels: int | None = None) -> torch.Tensor:
    """A random batch at the entry's default shape, optionally with other channels/features."""
    shape = list(entry.default_input_shape)
    if entry.input_kind == "tokens":  # int64 token ids; no channels
        return torch.randint(0, 1000, (batch, *shape))
    if in_channels is not None:
        shape[0] = in_channels
    return torch.randn(batch, *shape)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- registry ----------------------------------------------------------------------------------


def test_list_models_is_sorted_and_matches_registry() -> None:
    entries = zoo.list_models()

    names = [e.name for e in entries]
    assert names == sorted(names)
    assert names == [
        "dscnn",
        "mlp",
        "mobilenetv3_small",
        "resnet18",
        "resnet_tiny",
        "text_encoder",
        "yolo_nano",
    ]
    assert all(zoo.ZOO[e.name] is e for e in entries)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_entry_metadata_is_consistent(name: str) -> None:
    entry = zoo.get(name)

    expected_rank = 3 if entry.input_kind == "image" else 1  # vector: (F,), tokens: (T,)
    assert len(entry.default_input_shape) == expected_rank
    assert entry.description and "\n" not in entry.description


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(ModelSourceError) as info:
        zoo.get("resnet19")

    message = str(info.value)
    assert "did you mean 'resnet18'" in message
    assert "known: dscnn, mlp, mobilenetv3_small, resnet18, resnet_tiny" in message
    assert "\n" not in message


def test_unknown_name_without_close_match_lists_known_names() -> None:
    with pytest.raises(ModelSourceError) as info:
        zoo.create("xyz")

    assert "did you mean" not in str(info.value)
    assert "known: dscnn" in str(info.value)


def test_unknown_kwarg_is_named_with_accepted_ones() -> None:
    with pytest.raises(ModelSourceError) as info:
        zoo.create("resnet_tiny", depth=50)

    message = str(info.value)
    assert "'depth'" in message
    assert "num_classes, in_channels, width_mult" in message


def test_misspelled_kwarg_suggests_close_match() -> None:
    with pytest.raises(ModelSourceError, match="did you mean 'width_mult'"):
        zoo.create("dscnn", widht_mult=0.5)


@pytest.mark.parametrize("name", WIDTH_NAMES)
def test_width_mult_zero_is_rejected(name: str) -> None:
    with pytest.raises(ModelSourceError, match="width_mult"):
        zoo.create(name, width_mult=0)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("arg", ["num_classes", "in_channels"])
def test_nonpositive_sizes_are_rejected(name: str, arg: str) -> None:
    with pytest.raises(ModelSourceError, match=arg):
        zoo.create(name, **{arg: 0})


# --- shapes and modes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_output_shape_with_non_default_classes_and_channels(name: str) -> None:
    entry = zoo.get(name)
    in_channels = 12 if entry.input_kind == "vector" else 2
    model = zoo.create(name, num_classes=7, in_channels=in_channels)
    x = _input(entry, batch=2, in_channels=in_channels)

    out = model(x)

    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_batch_of_one_in_eval_mode(name: str) -> None:
    entry = zoo.get(name)
    model = zoo.create(name).eval()
    x = _input(entry, batch=1)

    with torch.no_grad():
        out = model(x)

    assert out.shape == (1, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "size"), [("resnet18", 8), ("resnet_tiny", 8), ("dscnn", 8)])
def test_small_resolutions_work(name: str, size: int) -> None:
    model = zoo.create(name).eval()
    channels = zoo.get(name).default_input_shape[0]

    with torch.no_grad():
        out = model(torch.randn(1, channels, size, size))

    assert out.shape == (1, 10)


def test_mobilenetv3_works_at_16x16() -> None:
    model = zoo.create("mobilenetv3_small").eval()

    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 16))

    assert out.shape == (1, 10)


def test_resnet18_small_input_stem_keeps_32x32_resolution() -> None:
    model = zoo.create("resnet18", small_input=True, width_mult=0.25).eval()
    x = torch.randn(1, 3, 32, 32)

    stem_out = model.stem(x)
    out = model(x)

    assert stem_out.shape[-2:] == (32, 32)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert out.shape == (1, 10)


def test_mlp_accepts_hidden_as_list() -> None:
    model = zoo.create("mlp", in_channels=5, hidden=[16, 8, 4])

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]

    assert [(m.in_features, m.out_features) for m in linears] == [
        (5, 16),
        (16, 8),
        (8, 4),
        (4, 10),
    ]


# --- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WIDTH_NAMES)
def test_half_width_has_fewer_parameters(name: str) -> None:
    full = zoo.create(name, width_mult=1.0)
    half = zoo.create(name, width_mult=0.5)

    assert _num_params(half) < _num_params(full)


def test_resnet_tiny_is_far_smaller_than_resnet18() -> None:
    tiny = _num_params(zoo.create("resnet_tiny"))
    big = _num_params(zoo.create("resnet18"))

    assert tiny * 10 < big


def test_resnet18_parameter_count_is_canonical() -> None:
    model = zoo.create("resnet18", num_classes=10, in_channels=3)

    n = _num_params(model)

    assert 11_000_000 <= n <= 11_400_000


def test_mobilenetv3_small_parameter_count_is_canonical() -> None:
    model = zoo.create("mobilenetv3_small", num_classes=1000, in_channels=3, width_mult=1.0)

    n = _num_params(model)

    assert 2_300_000 <= n <= 2_700_000


def test_mobilenetv3_uses_activation_modules() -> None:
    model = zoo.create("mobilenetv3_small")

    kinds = {type(m) for m in model.modules()}

    assert {nn.Hardswish, nn.Hardsigmoid, nn.ReLU} <= kinds


# --- capture -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dscnn", "resnet_tiny"])
def test_torch_export_matches_eager(name: str) -> None:
    entry = zoo.get(name)
    model = zoo.create(name).eval()
    x = _input(entry, batch=2)

    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        expected = model(x)
        actual = exported.module()(x)

    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TorchScript is deprecated upstream
@pytest.mark.parametrize("name", CLASS_NAMES)
def test_jit_trace_matches_eager(name: str) -> None:
    entry = zoo.get(name)
    model = zoo.create(name).eval()
    x = _input(entry, batch=1)

    with torch.no_grad():
        traced = torch.jit.trace(model, (x,))
        expected = model(x)
        actual = traced(x)

    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


# --- training ----------------------------------------------------------------------------------


def test_dscnn_can_fit_a_small_batch() -> None:
    torch.manual_seed(0)
    model = zoo.create("dscnn", width_mult=0.25, num_classes=4)
    x = torch.randn(64, 1, 16, 16)
    y = torch.arange(64) % 4  # fixed labels: the net has to memorise them
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()

    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert losses[-1] <= 0.5 * losses[0]


def test_text_encoder_takes_token_ids_and_exports() -> None:
    model = zoo.create("text_encoder", num_classes=3, dim=32, heads=4, layers=1).eval()
    ids = torch.randint(0, 1000, (2, 16))
    out = model(ids)
    assert out.shape == (2, 3)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (ids,), dynamic_shapes=({0: batch},))
    assert torch.allclose(program.module()(ids), out, atol=1e-5)
    with pytest.raises(ModelSourceError, match=r"dim \(30\) must be divisible by heads \(4\)"):
        zoo.create("text_encoder", dim=30, heads=4)


def test_mobilenetv3_leaves_chance_after_a_short_schedule() -> None:
    """Regression: with TF's BatchNorm momentum (0.01) the running statistics stayed near their
    init after a few epochs and the eval-mode model output a constant (top-1 at chance)."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.context import build_context
    from modelpress.training import TrainConfig, fit

    ctx, base = build_context(
        build_recipe(
            {
                "model": "zoo:mobilenetv3_small",
                "model_kwargs": {"width_mult": 0.5},
                "data": "builtin:digits",
                "input_shape": "1,3,32,32",
            }
        )
    )
    result = fit(base.module, ctx.data, ctx.task, TrainConfig(epochs=4, lr=3e-3), threads=2)
    assert result.best_metric >= 0.5


# --- input resolution ----------------------------------------------------------------------------


IMAGE_NAMES = [n for n in CLASS_NAMES if zoo.get(n).input_kind == "image"]


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_input_size_runs_the_model_at_that_resolution(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2, 3, 32, 32)
    full = zoo.create(name, in_channels=3).eval()
    small = zoo.create(name, in_channels=3, input_size=16).eval()
    small.model.load_state_dict(full.state_dict())  # same weights, only the resolution differs
    flops = []
    for model in (full, small):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        flops.append(counter.get_total_flops())
    assert flops[1] < flops[0]  # the convolutions' share falls with the square of the side
    with torch.no_grad():
        resized = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear")
        torch.testing.assert_close(small(x), full(resized))
    exported = torch.export.export(small, (x,)).module()
    torch.testing.assert_close(exported(x), small(x))


def test_input_size_is_checked_and_only_for_image_models() -> None:
    with pytest.raises(
        ModelSourceError, match=r"input_size must be an integer >= 4 or \[H, W\], got 2"
    ):
        zoo.create("dscnn", input_size=2)
    assert zoo.create("dscnn", input_size=[12, 16]).size == (12, 16)
    with pytest.raises(ModelSourceError, match="zoo model 'mlp' has no argument 'input_size'"):
        zoo.create("mlp", input_size=16)
