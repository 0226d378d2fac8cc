from pathlib import Path

import pytest
import torch

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine.context import build_context
from modelpress.errors import ModelSourceError
from modelpress.zoo import create


def _ctx(**recipe: object):
    return build_context(build_recipe(tiny_recipe(**recipe)))


def test_zoo_model_gets_classes_and_channels_from_the_data() -> None:
    ctx, base = _ctx(model="zoo:dscnn", input_shape="1,3,16,16")
    out = base.module(*ctx.example_inputs(4))
    assert out.shape == (4, 10)
    assert ctx.input_specs[0].shape == (1, 3, 16, 16)
    assert ctx.model_spec.kwargs["in_channels"] == 3


def test_initial_weights_follow_the_recipe_seed_not_torchs_global_state() -> None:
    built = []
    for global_seed in (1, 2):  # torch seeds itself at random in each new process
        torch.manual_seed(global_seed)
        built.append(_ctx(model="zoo:dscnn", seed=0)[1].module.state_dict())
    torch.manual_seed(1)
    other = _ctx(model="zoo:dscnn", seed=1)[1].module.state_dict()
    assert all(torch.equal(built[0][k], built[1][k]) for k in built[0])
    assert not torch.equal(built[0]["classifier.weight"], other["classifier.weight"])


def test_file_factory_with_model_kwargs(factory_file: Path) -> None:
    _, base = _ctx(model=f"{factory_file}:build", model_kwargs={"hidden": 16})
    assert base.module.head.in_features == 16


def test_package_module_factory() -> None:
    ctx, base = _ctx(model="modelpress.zoo.dscnn:dscnn", model_kwargs={"in_channels": 1})
    assert base.module(*ctx.example_inputs(2)).shape == (2, 10)


def test_plain_state_dict_weights_load(tmp_path: Path) -> None:
    model = create("dscnn", num_classes=10, in_channels=1, width_mult=0.5)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    _, base = _ctx(
        model="zoo:dscnn", model_kwargs={"width_mult": 0.5}, weights=str(tmp_path / "w.pt")
    )
    got = base.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())


def test_trained_checkpoint_rebuilds_itself(trained_checkpoint: Path) -> None:
    ctx, _base = build_context(
        build_recipe({"model": str(trained_checkpoint), "data": "builtin:digits"})
    )
    assert ctx.input_specs[0].shape == (1, 1, 16, 16)  # recorded at training time
    assert ctx.model_spec.kwargs["width_mult"] == 0.5


def test_torchscript_and_exported_program_files(tmp_path: Path) -> None:
    model = create("dscnn", num_classes=10, in_channels=1, width_mult=0.25).eval()
    x = torch.rand(2, 1, 16, 16)
    torch.jit.trace(model, x).save(str(tmp_path / "m.pt"))
    batch = {0: torch.export.Dim("batch")}
    torch.export.save(
        torch.export.export(model, (x,), dynamic_shapes=(batch,)), str(tmp_path / "m.pt2")
    )
    for name in ("m.pt", "m.pt2"):
        _, base = _ctx(model=str(tmp_path / name))
        assert torch.allclose(base.module(x), model(x), atol=1e-5)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"absent\.pt: weights file not found"):
        _ctx(model="zoo:dscnn", weights=str(tmp_path / "absent.pt"))


def test_factory_path_that_does_not_resolve(factory_file: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"has no factory 'biuld'; did you mean build"):
        _ctx(model=f"{factory_file}:biuld")
    with pytest.raises(ModelSourceError, match=r"cannot import 'no_such_pkg.models'"):
        _ctx(model="no_such_pkg.models:build")
    with pytest.raises(ModelSourceError, match=r"nothere\.py: model file not found"):
        _ctx(model=f"{factory_file.parent}/nothere.py:build")
    with pytest.raises(ModelSourceError, match=r"returned int, not an nn.Module"):
        _ctx(model=f"{factory_file}:not_a_module")


def test_weights_that_do_not_match_the_architecture(tmp_path: Path) -> None:
    torch.save(create("dscnn", num_classes=10, in_channels=1).state_dict(), tmp_path / "w.pt")
    with pytest.raises(
        ModelSourceError, match=r"weights do not match zoo:dscnn: \d+ shape mismatches"
    ):
        _ctx(model="zoo:dscnn", model_kwargs={"width_mult": 0.5}, weights=str(tmp_path / "w.pt"))


def test_corrupt_weights_file(tmp_path: Path) -> None:
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"definitely not a zip or a pickle")
    with pytest.raises(ModelSourceError, match=r"w\.pt: not a readable PyTorch weights file"):
        _ctx(model="zoo:dscnn", weights=str(bad))


def test_input_shape_the_model_rejects(factory_file: Path) -> None:
    with pytest.raises(
        ModelSourceError, match=r"rejects input \(1, 3, 16, 16\) float32.*--input-shape"
    ):
        _ctx(model=f"{factory_file}:build", input_shape="1,3,16,16")


def test_state_dict_given_as_the_model_asks_for_an_architecture(tmp_path: Path) -> None:
    torch.save(create("dscnn").state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelSourceError, match="holds only weights; pass the architecture"):
        _ctx(model=str(tmp_path / "w.pt"))


def test_exported_program_with_a_fixed_batch_says_what_it_expects(tmp_path: Path) -> None:
    model = create("dscnn", num_classes=10, in_channels=1, width_mult=0.25).eval()
    torch.export.save(
        torch.export.export(model, (torch.rand(2, 1, 16, 16),)), str(tmp_path / "m.pt2")
    )
    with pytest.raises(ModelSourceError, match=r"rejects input \(1, 1, 16, 16\).*Guard failed"):
        _ctx(model=str(tmp_path / "m.pt2"))


def test_model_with_too_few_outputs_for_the_classes(factory_file: Path) -> None:
    with pytest.raises(
        ModelSourceError,
        match=r"outputs 3 values per sample but builtin:digits has labels up to 9 \(10 classes\); "
        "give the model 10 outputs",
    ):
        _ctx(model=f"{factory_file}:build", model_kwargs={"num_classes": 3})
