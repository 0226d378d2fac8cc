"""Bad input caught where the recipe, the run directory, the model and the data meet: output
paths, damaged records, labels the model cannot score, oversized forwards, thread counts, and
recipe errors that name the CLI flag or the line."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from modelpress.core.observer import Observer
from modelpress.core.recipe import build_recipe, load_recipe
from modelpress.errors import (
    DataSourceError,
    ModelSourceError,
    OutputPathError,
    RecipeError,
    ResumeError,
)


class Events(Observer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def event(self, kind: str, message: str, **fields: object) -> None:
        self.seen.append((kind, message))


# ---------------------------------------------------------------- output paths


def test_check_output_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root, chmod does not stop writes: os.access, which the check asks, is made to say no
    for this one folder, as it does for a read-only mount or a folder of another user."""
    from modelpress.core.rundir import check_output

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real(p, mode))
    with pytest.raises(OutputPathError) as err:
        check_output(locked / "runs" / "one", "--out", folder=True)
    assert str(err.value) == (
        f"--out {locked}/runs/one: cannot write in {locked} (read-only); choose another --out "
        "in a folder you can write to"
    )
    with pytest.raises(OutputPathError, match="cannot write in"):
        check_output(locked, "--out", folder=True)
    with pytest.raises(OutputPathError, match="cannot write in"):
        check_output(locked / "b.json", "--json", folder=False)
    check_output(tmp_path / "free" / "deep" / "run", "--out", folder=True)  # creatable: fine
    assert not (tmp_path / "free").exists()  # checking writes nothing


def test_pipeline_checks_out_before_any_work(tmp_path: Path) -> None:
    from modelpress.engine import pipeline

    (tmp_path / "f").write_text("x")
    recipe = build_recipe({"model": "zoo:does-not-exist", "data": "builtin:digits"})
    with pytest.raises(OutputPathError, match="is a file"):  # not the unknown zoo model
        pipeline.run(recipe, out=tmp_path / "f")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"schema": 1, "iden', "not a readable run record (truncated?"),
        ("[]", "not a run record"),
        ('{"steps": {"a": 1}}', "not a run record"),
        ('{"steps": [], "identity": "x"}', "not a run record"),
        (b"\xff\xfe{}", "not a readable run record"),
    ],
)
def test_damaged_record_is_a_resume_error(tmp_path: Path, text: str | bytes, fragment: str) -> None:
    from modelpress.core.rundir import RunDir

    path = tmp_path / "record.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ResumeError) as err:
        RunDir(tmp_path).read_record()
    assert fragment in str(err.value) and "drop --resume and pass --force" in str(err.value)


# ---------------------------------------------------------------- labels


def _dataset(train: np.ndarray, validation: np.ndarray):
    from modelpress.sources.data import Dataset, Split

    def split(y: np.ndarray) -> Split:
        return Split([np.zeros((len(y), 4), np.float32)], y.astype(np.int64))

    k = int(max(train.max(), validation.max())) + 1
    return Dataset("npz:d.npz", split(train), split(np.array([0, 1])), split(validation), [], k)


def test_a_split_of_one_class_warns_with_its_count() -> None:
    from modelpress.tasks import get_task

    data = _dataset(np.zeros(30), np.array([0, 1, 1, 0]))
    get_task("classification").check_labels(data)
    assert data.warnings == [
        "npz:d.npz: the training split holds one class only (0: 30 samples); the model cannot "
        "learn to tell classes apart"
    ]


def test_auc_on_a_validation_split_of_one_class_is_an_error() -> None:
    from modelpress.tasks import get_task

    with pytest.raises(DataSourceError, match=r"validation split holds one class only \(1: 5"):
        get_task("binary").check_labels(_dataset(np.array([0, 1] * 10), np.ones(5)))
    data = _dataset(np.array([0, 1] * 10), np.ones(5))
    get_task("classification").check_labels(data)  # top-1 still exists: a warning
    assert len(data.warnings) == 1 and "validation split" in data.warnings[0]


def test_labels_of_a_checkpoint_with_fewer_outputs(tmp_path: Path) -> None:
    from modelpress.engine.context import build_context

    np.savez(tmp_path / "d.npz", x=np.ones((30, 6), np.float32), y=np.arange(30) % 4)
    recipe = build_recipe(
        {
            "model": "zoo:mlp",
            "data": f"npz:{tmp_path / 'd.npz'}",
            "model_kwargs": {"num_classes": 1},
        }
    )
    with pytest.raises(ModelSourceError) as err:
        build_context(recipe)
    assert "outputs 1 values per sample" in str(err.value)
    assert "labels up to 3 (4 classes)" in str(err.value)


# ---------------------------------------------------------------- memory and threads


def test_largest_activation_found_without_memory() -> None:
    from modelpress.core.memory import largest_activation

    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    largest, op = largest_activation(model, [(1, 3, 100_000, 100_000)], [torch.float32])
    assert largest == 64 * 100_000 * 100_000 * 4 and op == "conv2d"  # 2.5 TB, never allocated
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model is untouched


class _DataDependent(nn.Module):
    """Meta tensors have no values: ``nonzero`` stops the dry run after the first layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y.flatten()[torch.nonzero(y.flatten() > 0).flatten()]


def test_largest_activation_counts_the_first_layers_when_meta_stops() -> None:
    from modelpress.core.memory import largest_activation

    largest, op = largest_activation(_DataDependent(), [(2, 1, 50, 50)], [torch.float32])
    assert largest >= 2 * 8 * 50 * 50 * 4 and op


def test_forward_too_big_for_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelpress.core import memory
    from modelpress.engine.context import build_context

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)  # under 2 × (1, 128) float32
    recipe = build_recipe({"model": "zoo:mlp", "data": "builtin:breast_cancer"})
    with pytest.raises(ModelSourceError) as err:
        build_context(recipe)
    msg = str(err.value)
    assert msg == (
        "zoo:mlp at input shape 1,30: one forward of 1 sample(s) would need about 1.0 KB (linear "
        "makes a 512 B tensor) but 1000 B of memory is available; use a smaller --input-shape "
        "/ input_shape (or input_size in model_kwargs)"
    )


def test_threads_above_the_cores_clamped_with_an_event() -> None:
    from modelpress.engine.context import build_context

    events = Events()
    recipe = build_recipe(
        {"model": "zoo:mlp", "data": "builtin:breast_cancer", "evaluate": {"threads": 512}}
    )
    ctx, _ = build_context(recipe, events)
    cores = os.cpu_count()
    assert ctx.threads == cores
    assert (
        "warning",
        f"--threads / evaluate.threads 512 is more than this machine's {cores} logical cores; "
        f"using {cores}",
    ) in events.seen


# ---------------------------------------------------------------- recipe errors


def test_errors_name_the_flag_that_set_the_field() -> None:
    flags = {"steps.*.format": "--formats", "input_shape": "--input-shape", "steps.*": "--formats"}
    steps = [{"type": "export", "format": f} for f in ("onnx", "onxx", "onxx")]
    with pytest.raises(RecipeError) as err:
        build_recipe({"model": "m", "data": "builtin:digits", "steps": steps}, flags=flags)
    assert str(err.value) == (
        "--formats: Input should be 'onnx', 'tflite', 'torchscript' or 'openvino' (got 'onxx')"
    )
    step = {"type": "export", "format": "torchscript", "precision": "int8"}
    with pytest.raises(RecipeError, match=r"^--formats: torchscript exports fp32 only"):
        build_recipe({"model": "m", "data": "builtin:digits", "steps": [step]}, flags=flags)
    with pytest.raises(RecipeError) as err:  # a recipe file: the paths, prefixed by the file
        build_recipe({"model": "m", "data": "builtin:digits", "steps": steps}, "r.yaml")
    assert str(err.value).startswith("r.yaml: steps.1.format: Input should be")


def test_unknown_keys_suggest_and_list() -> None:
    with pytest.raises(RecipeError) as err:
        build_recipe({"model": "m", "data": {"source": "builtin:digits", "sed": 1}, "evalute": {}})
    msg = str(err.value)
    assert "data.sed: unknown key (did you mean 'seed'?); the keys here are: source, seed" in msg
    assert "evalute: unknown key (did you mean 'evaluate'?)" in msg
    with pytest.raises(RecipeError) as err:
        build_recipe(
            {"model": "m", "data": "builtin:digits", "steps": [{"type": "export", "opst": 17}]}
        )
    assert str(err.value) == (
        "recipe: steps.0.opst: unknown key (did you mean 'opset'?); `modelpress steps` lists "
        "the keys of every step type"
    )


def test_yaml_error_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: zoo:mlp\ndata:\n  source: builtin:digits\n   seed: 1\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}:4:8: not valid YAML (mapping values are not allowed")


def test_describe_fields_of_a_step() -> None:
    from modelpress.core.registry import describe_fields
    from modelpress.steps.export import ExportConfig, OnnxExport

    base = {key: (kind, default) for key, kind, default in describe_fields(ExportConfig)}
    assert base["format"] == ("onnx | tflite | torchscript | openvino", "onnx")
    assert "opset" not in base  # each backend's own keys are in its own config
    rows = {key: (kind, default) for key, kind, default in describe_fields(OnnxExport)}
    assert "type" not in rows
    assert rows["format"] == ("onnx", "onnx")
    assert rows["opset"] == ("int (≥ 13, ≤ 23)", "18")
    assert rows["calibration_samples"] == ("int | null (≥ 1)", "null")
    assert rows["keep_fp32"] == ("list[str]", "[]") and rows["slim"] == ("bool", "true")


def test_each_export_backend_has_its_own_config_and_a_key_of_another_is_named() -> None:
    """One config per export backend: ``format:`` chooses it, in a recipe and in code; a key
    another backend takes is refused by name, not ignored."""
    from modelpress.steps.export import ExportConfig, OnnxExport, TfliteExport

    assert type(ExportConfig(format="tflite")) is TfliteExport
    assert type(ExportConfig()) is OnnxExport  # onnx, the default format
    assert ExportConfig.model_validate({"format": "onnx", "opset": 17}).opset == 17
    assert "opset" not in ExportConfig(format="tflite").to_dict()
    with pytest.raises(RecipeError) as err:
        build_recipe(
            {
                "model": "zoo:mlp",
                "data": "builtin:digits",
                "steps": [{"type": "export", "format": "tflite", "opset": 17}],
            }
        )
    assert "steps.0.opset: a key of format: onnx only, not of format: tflite" in str(err.value)
    with pytest.raises(RecipeError) as err:  # a typo still gets its hint
        build_recipe(
            {
                "model": "zoo:mlp",
                "data": "builtin:digits",
                "steps": [{"type": "export", "format": "onnx", "opsett": 17}],
            }
        )
    assert "steps.0.opsett: unknown key (did you mean 'opset'?)" in str(err.value)
