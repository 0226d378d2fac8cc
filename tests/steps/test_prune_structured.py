import pytest
import torch
from torch import nn

from modelpress import zoo
from modelpress.errors import StepError
from modelpress.evaluate.size import count_macs
from modelpress.steps.prune.structured import prune_channels


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _widths(model: nn.Module) -> dict[str, int]:
    return {
        name: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    }


def test_resnet18_loses_channels_for_real() -> None:
    torch.manual_seed(0)
    model = zoo.get("resnet18").factory(num_classes=10, in_channels=3).eval()
    x = torch.randn(2, 3, 64, 64)
    macs, params = count_macs(model, [x]), _params(model)

    facts = prune_channels(model, [x], 0.5, num_classes=10)

    assert macs / count_macs(model, [x]) >= 2
    assert _params(model) < params / 2
    with torch.no_grad():
        assert model(x).shape == (2, 10)
    assert model.fc.out_features == 10 and model.fc.in_features == 256
    assert facts["kept"] == ["fc"]
    assert facts["channels"]["layer1.0.conv1"] == [64, 32]
    assert "fc" not in facts["channels"]
    assert facts["params_after"] == _params(model) < facts["params_before"] == params
    assert facts["macs_after"] < facts["macs_before"] / 2


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("resnet_tiny", (2, 3, 16, 16)),
        ("dscnn", (2, 1, 16, 16)),
        ("mobilenetv3_small", (2, 3, 16, 16)),
        ("mlp", (2, 30)),
    ],
)
def test_zoo_models_prune_and_run(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = zoo.create(name).train()  # given in train mode: it must stay so
    x = torch.randn(shape)
    params = _params(model)

    prune_channels(model, [x], 0.5)

    assert model.training and all(m.training for m in model.modules())
    assert _params(model) < 0.6 * params
    assert model(x).shape == (2, 10)


def test_round_to_keeps_widths_multiples_of_it() -> None:
    torch.manual_seed(0)
    small, x = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    plain, rounded = zoo.create("resnet_tiny"), zoo.create("resnet_tiny")
    prune_channels(plain, [small], 0.3)
    prune_channels(rounded, [small], 0.3, round_to=8)
    # 16 channels at ratio 0.3 keep 11; rounded to a multiple of 8, 8.
    assert plain.stem[0].out_channels == 11
    assert rounded.stem[0].out_channels == 8

    # MobileNetV3 adds depthwise convs (groups follow the width) and squeeze-excite blocks.
    mobilenet = zoo.create("mobilenetv3_small")
    prune_channels(mobilenet, [x], 0.3, round_to=8)
    widths = {n: w for n, w in _widths(mobilenet).items() if n != "classifier.3"}
    assert all(w % 8 == 0 for w in widths.values()), widths
    assert widths["blocks.4.block.0.0"] == 168  # 240 * 0.7
    assert mobilenet.classifier[3].out_features == 10
    assert mobilenet(x).shape == (2, 10)


def test_round_to_never_empties_a_layer() -> None:
    # 16 channels at ratio 0.75 keep 4; rounded to 8 that must be 8, not 0 (nor left at 16).
    model = zoo.create("resnet_tiny")
    facts = prune_channels(model, [torch.randn(2, 3, 16, 16)], 0.75, round_to=8)
    assert facts["channels"]["stem.0"] == [16, 8]
    assert facts["channels"]["layer4.0.conv1"] == [128, 32]


def test_bn_scale_ranks_by_batchnorm() -> None:
    torch.manual_seed(0)
    model = zoo.create("resnet_tiny").eval()
    with torch.no_grad():  # channel 3 of the stem gets the largest BN scale: it must survive
        model.stem[1].weight.fill_(0.1)
        model.stem[1].weight[3] = 5.0
    facts = prune_channels(model, [torch.randn(2, 3, 16, 16)], 0.5, importance="bn-scale")
    assert facts["importance"] == "bn-scale"
    assert model.stem[1].weight.max().item() == 5.0


class _DeadChannel(nn.Module):
    """conv1's channel 0 has the largest weights, but conv2 ignores it: useless, yet 'big'."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)
        with torch.no_grad():
            self.conv1.weight[0] *= 100
            self.conv2.weight[:, 0] = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x).relu()).relu()
        return self.fc(x.mean((2, 3)))


def test_taylor_prunes_what_the_loss_does_not_need() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 4, (8,))
    batches = [([x[:4]], y[:4]), ([x[4:]], y[4:])]
    by_magnitude, by_taylor = _DeadChannel(), _DeadChannel()
    by_taylor.load_state_dict(by_magnitude.state_dict())

    prune_channels(by_magnitude, [x], 0.5)
    facts = prune_channels(
        by_taylor,
        [x],
        0.5,
        importance="taylor",
        gradient_batches=batches,
        loss_fn=nn.functional.cross_entropy,
    )

    assert facts["channels"]["conv1"] == [8, 4]
    assert by_magnitude.conv1.weight.abs().max() > 10  # magnitude keeps the big, dead channel
    assert by_taylor.conv1.weight.abs().max() < 10  # Taylor sees it does nothing for the loss
    assert all(p.grad is None for p in by_taylor.parameters())


def test_runs_under_inference_mode() -> None:
    model = zoo.create("dscnn")
    with torch.inference_mode():
        facts = prune_channels(model, [torch.randn(2, 1, 16, 16)], 0.5)
    assert facts["channels"]["stem.0"] == [64, 32]


@pytest.mark.parametrize("ratio", [0, 1, 1.5, -0.2, True])
def test_ratio_out_of_range(ratio: float) -> None:
    with pytest.raises(
        StepError, match=rf"^prune: ratio must be between 0 and 1 \(exclusive\), got {ratio}$"
    ):
        prune_channels(zoo.create("mlp"), [torch.randn(2, 30)], ratio)


def test_unknown_keep_name_lists_close_names() -> None:
    with pytest.raises(
        StepError,
        match=r"^prune-1: keep names module 'layer1\.0\.con1' that ResNet does not have; did you mean 'layer1\.0\.conv1'",
    ):
        prune_channels(
            zoo.create("resnet_tiny"),
            [torch.randn(2, 3, 16, 16)],
            0.5,
            keep=["layer1.0.con1"],
            where="prune-1",
        )


def test_keep_protects_a_layer() -> None:
    model = zoo.create("resnet_tiny")
    facts = prune_channels(model, [torch.randn(2, 3, 16, 16)], 0.5, keep=["layer4.0.conv1"])
    assert model.layer4[0].conv1.out_channels == 128
    assert model.layer3[0].conv1.out_channels == 32
    assert facts["kept"] == ["fc", "layer4.0.conv1"]


def test_bn_scale_without_batchnorm() -> None:
    with pytest.raises(StepError, match=r"MLP has no BatchNorm layer; use importance: magnitude"):
        prune_channels(zoo.create("mlp"), [torch.randn(2, 30)], 0.5, importance="bn-scale")


def test_taylor_needs_labelled_batches() -> None:
    with pytest.raises(StepError, match=r"importance 'taylor' needs labelled batches and a loss"):
        prune_channels(zoo.create("mlp"), [torch.randn(2, 30)], 0.5, importance="taylor")


def test_unknown_importance() -> None:
    with pytest.raises(
        StepError, match=r"unknown importance 'l2'; known: magnitude, bn-scale, taylor"
    ):
        prune_channels(zoo.create("mlp"), [torch.randn(2, 30)], 0.5, importance="l2")


class _SplitBlock(nn.Module):
    """A CSP-style block written for one width: the split sizes are constants."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(32, 64, 1)
        self.dw = nn.Conv2d(48, 48, 3, padding=1, groups=48)
        self.fuse = nn.Conv2d(64, 32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.expand(x).split([48, 16], dim=1)  # (B, 48, H, W), (B, 16, H, W)
        return self.fuse(torch.cat([self.dw(a), b], 1))


class _SplitNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.block = _SplitBlock()
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(self.stem(x)).mean((2, 3)))


class _ShuffleNet(nn.Module):
    """A ShuffleNet-style channel shuffle written in forward with a hard-coded 4 × 16 layout."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, padding=1)
        self.conv = nn.Conv2d(64, 64, 1, groups=4)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 64, H, W)
        b, _, h, w = x.shape
        x = x.view(b, 4, 16, h, w).transpose(1, 2).reshape(b, 64, h, w)
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.mark.parametrize(
    ("build", "x", "message", "keep"),
    [
        (
            lambda: zoo.create("text_encoder"),
            torch.randint(0, 100, (2, 16)),
            r"^prune: structured pruning cannot handle module 'layers\.\d\.attn' \(SelfAttention\): "
            r"IndexError: .*; keep it with keep: \['layers\.0\.attn', 'layers\.1\.attn'\] "
            r"or use method l1-unstructured$",
            ["layers.0.attn", "layers.1.attn"],
        ),
        (
            _SplitNet,
            torch.randn(2, 3, 8, 8),
            r"^prune: structured pruning cannot handle module 'block' \(_SplitBlock\): .*; "
            r"keep it with keep: \['block'\] or use method l1-unstructured$",
            ["block"],
        ),
        (
            _ShuffleNet,
            torch.randn(2, 3, 8, 8),
            r"^prune: structured pruning cannot handle _ShuffleNet's forward after module 'stem' "
            r"\(Conv2d\): RuntimeError: shape '\[2, 4, 16, 8, 8\]' is invalid .*; "
            r"keep it with keep: \['stem'\] or use method l1-unstructured$",
            ["stem"],
        ),
    ],
    ids=["text_encoder-attention", "fixed-split", "fixed-shuffle"],
)
def test_cannot_handle_names_the_module_and_the_fix_works(
    build: type[nn.Module], x: torch.Tensor, message: str, keep: list[str]
) -> None:
    torch.manual_seed(0)
    model = build().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}

    with pytest.raises(StepError, match=message):
        prune_channels(model, [x], 0.5)

    # A failed attempt leaves the model as it was.
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # Following the message's advice works, and still removes channels elsewhere.
    facts = prune_channels(model, [x], 0.5, keep=keep)
    assert facts["params_after"] < facts["params_before"]
    assert model(x).shape == (2, 10)
