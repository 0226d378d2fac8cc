"""Files a user is handed never choose what code runs or where modelpress writes.

1. a checkpoint may name a zoo model, but a factory only when the user named it or trusts it;
2. training checkpoints (last.pt) are read with weights_only: a pickle put there never runs;
3. names that become paths (recipe and step names) are plain file names, and a record.json
   edited to point outside its run directory is refused on --resume.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from helpers.recipes import tiny_recipe
from modelpress.core.observer import Observer
from modelpress.core.recipe import build_recipe, load_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context, rebuild_info
from modelpress.errors import ModelSourceError, RecipeError, ResumeError
from modelpress.sources import models
from modelpress.sources.structure import apply_structure
from modelpress.training import TrainConfig, checkpoint_metadata, fit, save_checkpoint


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, message: str, **fields: Any) -> None:
        self.events.append((kind, message))


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    """What an attacker hands over: a valid weights_only file whose metadata names a factory
    that runs a shell command."""
    meta = {"model": "subprocess:getoutput", "model_kwargs": {"cmd": f"touch {marker}"}}
    torch.save({"state_dict": {}, "modelpress": meta}, path)
    return path


def _saved(recipe: dict, path: Path) -> Path:
    """A modelpress checkpoint of ``recipe``'s model, written as ``modelpress train`` does."""
    ctx, base = build_context(build_recipe(recipe))
    save_checkpoint(path, base.module, checkpoint_metadata(ctx, rebuild_info(ctx.model_spec)))
    return path


# ------------------------------------------------------------------ 1. checkpoint code
def test_a_checkpoint_naming_a_factory_does_not_run_it(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(ModelSourceError) as err:
        models.inspect_source(str(evil))
    message = str(err.value)
    assert "'subprocess:getoutput'" in message and "--trust-checkpoint-code" in message
    assert "\n" not in message
    with pytest.raises(ModelSourceError, match="trust_checkpoint_code=True"):
        build_context(build_recipe({"model": str(evil), "data": "builtin:digits"}))
    assert not marker.exists()


def test_a_checkpoint_naming_another_file_is_not_followed(tmp_path: Path) -> None:
    loop = tmp_path / "loop.pt"
    torch.save({"state_dict": {}, "modelpress": {"model": str(loop)}}, loop)  # names itself
    with pytest.raises(ModelSourceError, match="does not follow"):
        models.inspect_source(str(loop))
    for other in ("other.onnx", "x.pt2", "os"):
        torch.save({"modelpress": {"model": other}}, tmp_path / "a.pt")
        with pytest.raises(ModelSourceError, match="does not follow"):
            models.inspect_source(str(tmp_path / "a.pt"))
    torch.save({"modelpress": {"model": "zoo:mlp", "model_kwargs": [1]}}, tmp_path / "b.pt")
    with pytest.raises(ModelSourceError, match="metadata is malformed"):
        models.inspect_source(str(tmp_path / "b.pt"))


def test_a_zoo_checkpoint_still_loads_by_itself(tmp_path: Path) -> None:
    ckpt = _saved({"model": "zoo:mlp", "data": "builtin:digits"}, tmp_path / "mlp.pt")
    ctx, base = build_context(build_recipe({"model": str(ckpt), "data": "builtin:digits"}))
    assert ctx.model_spec.architecture == "zoo:mlp"
    assert base.module(*ctx.example_inputs(2)).shape == (2, 10)


def test_a_factory_checkpoint_loads_when_the_user_names_or_trusts_the_factory(
    factory_file: Path, tmp_path: Path
) -> None:
    factory = f"{factory_file}:build"
    ckpt = _saved(tiny_recipe(factory, model_kwargs={"hidden": 16}), tmp_path / "net.pt")
    with pytest.raises(ModelSourceError, match=f"'{factory}'"):  # named by nobody: refused
        build_context(build_recipe(tiny_recipe(str(ckpt))))
    # trusted outright
    ctx, base = build_context(build_recipe(tiny_recipe(str(ckpt), trust_checkpoint_code=True)))
    assert base.module.head.in_features == 16 and ctx.model_spec.kwargs["hidden"] == 16
    # the factory as the model, the checkpoint as its weights
    named = tiny_recipe(factory, weights=str(ckpt), model_kwargs={"hidden": 16})
    assert build_context(build_recipe(named))[1].module.head.in_features == 16
    # a teacher checkpoint whose factory the recipe names (a step's student, here)
    step = {"type": "distill", "student": factory, "teacher": str(ckpt)}
    ctx, _ = build_context(build_recipe(tiny_recipe("zoo:dscnn", steps=[step])))
    teacher, spec = ctx.load_model(str(ckpt), where="teacher")
    assert spec.architecture == factory and teacher.head.in_features == 16
    plain, _ = build_context(build_recipe(tiny_recipe("zoo:dscnn")))
    with pytest.raises(ModelSourceError, match="--trust-checkpoint-code"):
        plain.load_model(str(ckpt), where="teacher")


def test_the_same_factory_named_by_a_relative_path_counts_as_named(
    factory_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(factory_file.parent)
    recipe = build_recipe(tiny_recipe(f"{factory_file.name}:build"))
    trust = recipe.code_trust()
    assert trust.allows(f"{factory_file.resolve()}:build")
    assert not trust.allows(f"{factory_file.resolve()}:not_a_module")
    assert not trust.allows("subprocess:getoutput")


def test_resume_rebuilds_a_file_factory_step_checkpoint(factory_file: Path, tmp_path: Path) -> None:
    """A pruned student's model.pt names the recipe's own factory: resuming reuses it."""
    step = {"type": "prune", "method": "l1-unstructured", "ratio": 0.3, "finetune_epochs": 0}
    recipe = build_recipe(tiny_recipe(f"{factory_file}:build", steps=[step]))
    first = pipeline.run(recipe, out=tmp_path / "run")
    # measured (an untrained model: at chance, so `collapsed`), not failed
    assert first["steps"][0]["status"] in pipeline.MEASURED, first["steps"][0]["error"]
    seen = Recorder()
    again = pipeline.run(recipe, out=tmp_path / "run", resume=True, observer=seen)
    assert again["steps"][0]["status"] == first["steps"][0]["status"], again["steps"][0]["error"]
    node = again["steps"][0]["key"]
    reused = f"prune-l1-unstructured: finished before (node {node}), reused"
    assert ("resume", reused) in seen.events


def test_a_pruning_record_sets_only_plain_structure() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.act = torch.relu  # an instance attribute that is code

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.fc(x))

    state = Net().state_dict()
    with pytest.raises(ModelSourceError, match="does not have"):
        apply_structure(Net(), {"": {"act": "anything"}}, state)
    with pytest.raises(ModelSourceError, match="only numbers, strings and lists"):
        apply_structure(Net(), {"fc": {"out_features": torch.tensor(3)}}, state)


# ------------------------------------------------------------------ 2. training checkpoints
class _Evil:
    """Unpickling this (weights_only=False) would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _mlp() -> tuple:
    ctx, base = build_context(build_recipe({"model": "zoo:mlp", "data": "builtin:digits"}))
    return ctx, base.module


CFG = TrainConfig(epochs=2, lr=1e-2, precise_bn=0)


def test_a_malicious_last_pt_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    torch.save({"config_hash": "x", "epoch": _Evil(marker)}, tmp_path / "last.pt")
    ctx, model = _mlp()
    seen = Recorder()
    result = fit(model, ctx.data, ctx.task, CFG, checkpoint_dir=tmp_path, observer=seen)
    assert not marker.exists()
    assert result.resumed_from is None and len(result.history) == 2 and result.best_metric > 0.5
    assert any(k == "warning" and "training starts over" in m for k, m in seen.events)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2  # replaced


def test_a_truncated_or_unfitting_last_pt_starts_training_over(tmp_path: Path) -> None:
    ctx, model = _mlp()
    fit(model, ctx.data, ctx.task, CFG, checkpoint_dir=tmp_path)  # from scratch: the reference
    good = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(good[: len(good) // 2])
    seen = Recorder()
    _, fresh = _mlp()
    result = fit(fresh, ctx.data, ctx.task, CFG, checkpoint_dir=tmp_path, observer=seen)
    assert result.resumed_from is None and len(result.history) == 2
    assert any("not a readable training checkpoint" in m for _, m in seen.events)
    # this config's checkpoint, but its best_state does not fit: none of it is kept (model,
    # optimizer and scheduler start as they were, so training matches the one from scratch)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["best_state"] = {"net.0.weight": torch.zeros(1)}
    torch.save(state, tmp_path / "last.pt")
    seen = Recorder()
    _, other = _mlp()
    result = fit(other, ctx.data, ctx.task, CFG, checkpoint_dir=tmp_path, observer=seen)
    assert result.resumed_from is None and len(result.history) == 2
    assert any("does not fit this training" in m for _, m in seen.events)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


@pytest.mark.parametrize(
    ("optimizer", "scheduler"), [("adamw", "cosine"), ("adam", "step"), ("sgd", "plateau")]
)
def test_last_pt_reads_with_weights_only_and_resumes(
    tmp_path: Path, optimizer: str, scheduler: str
) -> None:
    cfg = CFG.model_copy(update={"optimizer": optimizer, "scheduler": scheduler})
    ctx, model = _mlp()
    fit(model, ctx.data, ctx.task, cfg, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and state["optimizer"]["state"]
    _, again = _mlp()
    resumed = fit(again, ctx.data, ctx.task, cfg, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 2 and len(resumed.history) == 2
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------ 3. names and paths
BAD_NAMES = ["../../escape", "a/b", "..", ".hidden", "/etc/x", "nul\x00byte", "a\nb", "x" * 65]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_step_name_that_is_not_a_plain_file_name_is_refused(name: str) -> None:
    recipe = tiny_recipe("zoo:mlp", steps=[{"type": "torchscript", "name": name}])
    with pytest.raises(RecipeError) as err:
        build_recipe(recipe)
    message = str(err.value)
    assert "steps.0.name" in message and "letters, digits" in message and "\n" not in message


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_recipe_name_that_is_not_a_plain_file_name_is_refused(name: str) -> None:
    with pytest.raises(RecipeError, match=r"recipe: name: .*letters, digits"):
        load_recipe(tiny_recipe("zoo:mlp", name=name))


def test_plain_names_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    steps = [{"type": "torchscript", "name": "student-ts_v1.2"}]
    path.write_text(json.dumps(tiny_recipe("zoo:mlp", name="digits-int8", steps=steps)))
    recipe = load_recipe(path)
    assert recipe.name == "digits-int8" and recipe.steps[0].display_name == "student-ts_v1.2"


def _tampered_run(tmp_path: Path) -> tuple[Any, Path]:
    recipe = build_recipe(tiny_recipe("zoo:mlp", input_shape=None, steps=[{"type": "torchscript"}]))
    out = tmp_path / "run"
    pipeline.run(recipe, out=out)
    return recipe, out


def test_resume_refuses_a_record_that_points_outside_the_run(tmp_path: Path) -> None:
    recipe, out = _tampered_run(tmp_path)
    outside = tmp_path / "outside.pt"
    outside.write_bytes((out / "artifacts" / "model-fp32.pt").read_bytes())
    record = json.loads((out / "record.json").read_text())
    record["steps"][0]["artifact"]["path"] = "../outside.pt"
    (out / "record.json").write_text(json.dumps(record))
    with pytest.raises(ResumeError, match=r"steps\.0\.artifact\.path '\.\./outside\.pt'.*--force"):
        pipeline.run(recipe, out=out, resume=True)
    record["steps"][0]["artifact"]["path"] = "artifacts/model-fp32.pt"
    record["steps"][0]["artifact"]["handoffs"] = {"qat_float_model": str(outside)}
    (out / "record.json").write_text(json.dumps(record))
    with pytest.raises(ResumeError, match=r"handoffs\.qat_float_model"):
        pipeline.run(recipe, out=out, resume=True)
    (out / "record.json").write_text("{not json")
    with pytest.raises(ResumeError, match="not a readable run record"):
        pipeline.run(recipe, out=out, resume=True)


def test_a_pt2_with_pickled_python_objects_is_refused(tmp_path: Path) -> None:

    from modelpress.sources.models import load_exported

    good = tmp_path / "good.pt2"
    program = torch.export.export(torch.nn.Linear(3, 2).eval(), (torch.randn(1, 3),))
    torch.export.save(program, str(good))
    assert load_exported(good)(torch.ones(1, 3)).shape == (1, 2)  # tensors and graphs load
    # the same archive with an opaque constant, which torch.export.load would pickle.loads
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        root = src.namelist()[0].split("/", 1)[0]
        dst.writestr(f"{root}/data/constants/opaque_obj_0", b"cos\nsystem\n(S'touch PWNED'\ntR.")
    with pytest.raises(ModelSourceError, match=r"evil\.pt2: holds pickled Python objects"):
        load_exported(evil)
    assert not (tmp_path / "PWNED").exists()


def test_a_recipe_file_cannot_switch_trust_on(tmp_path: Path) -> None:
    """Trust to run a checkpoint's factory comes from the keyboard, never from a shared file."""
    marker = tmp_path / "PWNED"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        f"model: {evil}\ndata: builtin:digits\ninput_shape: 1,1,8,8\ntrust_checkpoint_code: true\n"
    )
    with pytest.raises(RecipeError) as err:
        load_recipe(shared)
    message = str(err.value)
    assert "shared.yaml" in message and "--trust-checkpoint-code" in message
    assert "\n" not in message and not marker.exists()
    # the same recipe without the key loads; trust from the command line (--set) still works
    shared.write_text(f"model: {evil}\ndata: builtin:digits\ninput_shape: 1,1,8,8\n")
    assert not load_recipe(shared).trust_checkpoint_code
    trusted = load_recipe(shared, ["trust_checkpoint_code=true"])
    assert trusted.trust_checkpoint_code
    # and a run's resolved recipe never writes it out, so it cannot travel with the run
    assert "trust_checkpoint_code" not in trusted.to_dict()
