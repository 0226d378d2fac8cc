import json
from pathlib import Path

import pytest
import torch
from torch import nn

from modelpress import zoo
from modelpress.errors import ModelSourceError
from modelpress.sources.structure import apply_structure, snapshot, structure_changes
from modelpress.steps.prune.structured import prune_channels


@pytest.mark.parametrize(
    ("name", "shape", "stem_width"),
    [("resnet_tiny", (2, 3, 16, 16), 8), ("dscnn", (2, 1, 16, 16), 32)],
)
def test_pruned_model_reloads_from_plain_data(
    name: str, shape: tuple[int, ...], stem_width: int, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    build = zoo.get(name).factory
    model = build(num_classes=10, in_channels=shape[1]).eval()
    x = torch.randn(shape)
    before = snapshot(model)
    prune_channels(model, [x], 0.5)
    path = tmp_path / "pruned.pt"
    structure = structure_changes(before, model)
    torch.save({"state_dict": model.state_dict(), "structure": structure}, path)

    ckpt = torch.load(path, weights_only=True)  # plain data only: no pickled modules
    fresh = build(num_classes=10, in_channels=shape[1]).eval()
    apply_structure(fresh, ckpt["structure"], ckpt["state_dict"])
    fresh.load_state_dict(ckpt["state_dict"], strict=True)

    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    assert fresh.stem[0].out_channels == stem_width
    assert fresh.stem[0].weight.shape[0] == stem_width
    assert json.loads(json.dumps(structure)) == structure  # JSON-plain, e.g. for the record


def test_structure_records_only_what_changed_and_restores_tuples() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    before = snapshot(model)
    assert structure_changes(before, model) == {}

    # Shrink the hidden width by hand, as a pruner would: 8 -> 6.
    with torch.no_grad():
        model[0].weight = nn.Parameter(model[0].weight[:6].clone())
        model[0].bias = nn.Parameter(model[0].bias[:6].clone())
        model[1].weight = nn.Parameter(model[1].weight[:6].clone(), requires_grad=False)
        model[1].bias = nn.Parameter(model[1].bias[:6].clone())
        model[2].weight = nn.Parameter(model[2].weight[:, :6].clone())
    model[0].out_features, model[1].normalized_shape, model[2].in_features = 6, (6,), 6
    structure = structure_changes(before, model)
    assert structure == {
        "0": {"out_features": 6},
        "1": {"normalized_shape": [6]},
        "2": {"in_features": 6},
    }

    fresh = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    fresh[1].weight.requires_grad_(False)
    apply_structure(fresh, structure, model.state_dict())
    fresh.load_state_dict(model.state_dict(), strict=True)
    assert fresh[1].normalized_shape == (6,)  # a tuple again, as LayerNorm keeps it
    assert isinstance(fresh[1].weight, nn.Parameter) and not fresh[1].weight.requires_grad
    x = torch.randn(3, 4)
    assert torch.equal(fresh(x), model(x))


def test_tied_weights_stay_tied() -> None:
    def build() -> nn.Sequential:
        model = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False))
        model[1].weight = model[0].weight
        return model

    pruned = build()
    with torch.no_grad():
        shared = nn.Parameter(pruned[0].weight[:, :4][:4].clone())
    pruned[0].weight = pruned[1].weight = shared
    pruned[0].in_features = pruned[0].out_features = 4
    pruned[1].in_features = pruned[1].out_features = 4
    state = pruned.state_dict()

    fresh = apply_structure(build(), structure_changes(snapshot(build()), pruned), state)
    fresh.load_state_dict(state, strict=True)
    assert fresh[0].weight is fresh[1].weight
    assert fresh[0].weight.shape == (4, 4)


def test_unknown_module_in_record() -> None:
    model = zoo.create("resnet_tiny")
    with pytest.raises(
        ModelSourceError,
        match=r"^the checkpoint's pruning record names module 'blocks\.9\.dw' that model ResNet does not have; rebuild",
    ):
        apply_structure(model, {"blocks.9.dw": {"out_channels": 4}}, model.state_dict())


def test_unknown_attribute_in_record() -> None:
    model = zoo.create("resnet_tiny")
    with pytest.raises(
        ModelSourceError, match=r"names attribute stem\.0\.out_chanels that model ResNet"
    ):
        apply_structure(model, {"stem.0": {"out_chanels": 4}}, model.state_dict())
