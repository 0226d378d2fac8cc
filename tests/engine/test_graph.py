"""The step graph: ``id`` / ``from:`` wiring, node keys, and ``--resume`` reusing any finished
node whose key (parents, config, what it reads) is unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.errors import RecipeError

DATA = {"source": "builtin:digits", "max_samples": 300}

# six steps in three branches from the baseline; two of them train
BRANCHES = [
    {"type": "export", "format": "onnx", "id": "onnx"},
    {"type": "export", "format": "onnx", "precision": "int8-dynamic", "from": "onnx"},
    {"type": "torchscript", "from": "baseline"},
    {
        "type": "prune",
        "id": "pruned",
        "from": "baseline",
        "method": "l1-unstructured",
        "ratio": 0.2,
        "finetune_epochs": 1,
    },
    {
        "type": "prune",
        "id": "pruned-more",
        "from": "pruned",
        "method": "l1-unstructured",
        "ratio": 0.3,
        "finetune_epochs": 1,
    },
    {"type": "export", "name": "export-pruned", "format": "onnx", "from": "pruned-more"},
]


class Log(pipeline.Observer):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, kind: str, message: str, **fields: object) -> None:
        self.events.append((kind, message))

    def said(self, kind: str) -> list[str]:
        return [m for k, m in self.events if k == kind]


def _run(model: str, out: Path, steps: list[dict], resume: bool = False, **extra: object) -> tuple:
    log = Log()
    recipe = build_recipe(tiny_recipe(model, data=extra.pop("data", DATA), steps=steps, **extra))
    record = pipeline.run(recipe, out=out, resume=resume, force=not resume, observer=log)
    return record, log


def _model(factory_file: Path) -> str:
    return f"{factory_file}:build"


def test_branches_start_where_from_says(factory_file: Path, tmp_path: Path) -> None:
    record, _ = _run(_model(factory_file), tmp_path / "run", BRANCHES)
    steps = {s["id"]: s for s in record["steps"]}
    assert all(s["status"] in pipeline.MEASURED for s in steps.values()), steps
    assert steps["export-onnx-int8-dynamic"]["from"] == ["onnx"]
    assert steps["export-onnx-int8-dynamic"]["artifact"]["parent"] == "onnx-fp32"
    assert steps["torchscript"]["artifact"]["parents"] == ["baseline"]  # not the newest artifact
    assert steps["pruned"]["from"] == ["baseline"]
    assert steps["export-pruned"]["artifact"]["parent"] == steps["pruned-more"]["artifact"]["name"]
    assert record["schema"] == 2
    nodes = {n["id"]: n for n in record["nodes"]}
    assert nodes["baseline"]["parents"] == [] and nodes["pruned-more"]["parents"] == ["pruned"]
    assert len({n["key"] for n in nodes.values()}) == 7  # one key per node
    for node in record["nodes"]:
        assert (tmp_path / "run/nodes" / node["key"] / "outputs.npz").is_file()


def test_resume_recomputes_only_the_changed_node_and_what_follows(
    factory_file: Path, tmp_path: Path
) -> None:
    model, out = _model(factory_file), tmp_path / "run"
    first, _ = _run(model, out, BRANCHES)
    again, log = _run(model, out, BRANCHES, resume=True)
    assert [s["reused"] for s in again["steps"]] == [True] * 6
    assert len(log.said("resume")) == 7 and not log.said("step")  # baseline and six steps

    last = [*BRANCHES[:5], {**BRANCHES[5], "opset": 17}]  # the last step changed
    third, log = _run(model, out, last, resume=True)
    assert [s["reused"] for s in third["steps"]] == [True] * 5 + [False]
    assert log.said("step") == ["export-pruned: running"]
    assert third["steps"][5]["config"]["opset"] == 17

    middle = [*BRANCHES[:3], {**BRANCHES[3], "ratio": 0.4}, *BRANCHES[4:]]  # a training step
    fourth, log = _run(model, out, middle, resume=True)
    assert [s["reused"] for s in fourth["steps"]] == [True, True, True, False, False, False]
    assert log.said("step") == [f"{s}: running" for s in ("pruned", "pruned-more", "export-pruned")]
    # pruned-more has the same config but a new parent: a new key and folder, so its finished
    # training (last.pt of the old lineage) is never resumed
    assert fourth["steps"][4]["key"] != first["steps"][4]["key"]
    assert not any("training resumed" in m for m in log.said("resume"))


def test_editing_the_model_file_or_the_data_recomputes_from_the_baseline(
    factory_file: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    x, y = rng.normal(size=(120, 1, 16, 16)).astype(np.float32), np.arange(120) % 10
    np.savez(data, x=x, y=y)
    model, out = _model(factory_file), tmp_path / "run"
    steps = [{"type": "torchscript"}]
    source = {"source": f"npz:{data}"}
    first, _ = _run(model, out, steps, data=source)
    factory_file.write_text(factory_file.read_text().replace("hidden=32", "hidden=24"))
    second, log = _run(model, out, steps, resume=True, data=source)
    assert second["nodes"][0]["key"] != first["nodes"][0]["key"]
    assert second["steps"][0]["reused"] is False and log.said("baseline")
    assert second["baseline"]["params"] != first["baseline"]["params"]

    np.savez(data, x=x, y=(y + 1) % 10)  # relabelled data, same shapes and file name
    third, log = _run(model, out, steps, resume=True, data=source)
    assert third["nodes"][0]["reads"]["data"] != second["nodes"][0]["reads"]["data"]
    assert third["steps"][0]["reused"] is False and log.said("baseline")

    fourth, log = _run(model, out, steps, resume=True, data=source)  # nothing changed
    assert fourth["steps"][0]["reused"] is True and not log.said("baseline")


def test_a_step_wired_to_an_input_it_cannot_take_is_a_recipe_error_with_both_named() -> None:
    """It was a failed step (and the steps after it), found after the baseline was measured:
    the configs say what each step makes, so the recipe says it when it is read."""
    steps = [
        {"type": "export", "format": "onnx", "id": "onnx"},
        {"type": "quantize", "from": "onnx"},
        {"type": "export", "format": "onnx", "precision": "int8", "from": "quantize-static"},
    ]
    with pytest.raises(RecipeError) as err:
        build_recipe(tiny_recipe("zoo:mlp", steps=steps))
    assert str(err.value) == (
        "recipe: steps.1.from: `quantize` takes an fp32 torch model, but 'onnx' (steps.0, "
        "`export`) makes an onnx model; start it from a step that makes one (or baseline)"
    )


def test_a_step_wired_to_a_failed_step_fails_with_it_named(
    factory_file: Path, tmp_path: Path
) -> None:
    steps = [  # more calibration samples than the split holds: the step fails as it starts
        {"type": "quantize", "id": "q", "calibration_samples": 100000},
        {"type": "export", "format": "onnx", "precision": "int8", "from": "q"},
    ]
    record, _ = _run(_model(factory_file), tmp_path / "run", steps)
    assert record["steps"][0]["status"] == "failed"
    assert record["steps"][1]["status"] == "failed"
    assert "starts from 'q', which failed" in record["steps"][1]["error"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [{"type": "torchscript", "from": "onx"}, {"type": "export", "id": "onnx"}],
            "steps.0.from: 'onx' names no step (did you mean 'onnx'?); the ids are: baseline, "
            "torchscript, onnx",
        ),
        (
            [
                {"type": "torchscript", "id": "a", "from": "b"},
                {"type": "export", "id": "b", "from": "a"},
            ],
            "the steps a → b → a start from each other (a cycle",
        ),
        (
            [{"type": "torchscript", "id": "a"}, {"type": "export", "id": "a"}],
            "steps.1.id: 'a' is already the id of steps.0",
        ),
        (
            [{"type": "export", "id": "x"}, {"type": "quantize", "from": ["baseline", "x"]}],
            "steps.1.from: `quantize` takes 1 input; name one of baseline, x",
        ),
        ([{"type": "torchscript", "id": "baseline"}], "steps.0.id: 'baseline' names the model"),
    ],
)
def test_bad_wiring_is_one_message_before_any_work(steps: list, message: str) -> None:
    with pytest.raises(RecipeError) as err:
        build_recipe(tiny_recipe("zoo:mlp", steps=steps))
    assert message in str(err.value)


def test_train_resumes_only_the_same_model_file_and_data(
    factory_file: Path, tmp_path: Path
) -> None:
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    recipe = build_recipe(tiny_recipe(_model(factory_file), data=DATA))
    out, cfg = tmp_path / "net.pt", TrainConfig(epochs=1, lr=1e-3)
    assert train_and_save(recipe, cfg, out)[0].resumed_from is None
    assert train_and_save(recipe, cfg, out)[0].resumed_from == 1  # the same run, finished
    # the same weights' shapes, another forward: the old checkpoint would load and be "resumed"
    edited = factory_file.read_text().replace("self.body(x))", "self.body(x) * 0.5)")
    factory_file.write_text(edited)
    assert train_and_save(recipe, cfg, out)[0].resumed_from is None  # trains the new model


def test_building_and_importing_leave_process_state_as_found(
    factory_file: Path, tmp_path: Path
) -> None:
    import sys

    import torch

    from modelpress.engine.context import build_context

    factory_file.write_text(
        factory_file.read_text() + "\nimport sys\nsys.path.insert(0, '/somewhere/else')\n"
    )
    path_before, threads = list(sys.path), torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_context(build_recipe(tiny_recipe(_model(factory_file), data=DATA)))
    assert torch.equal(torch.rand(3), expected)  # the caller's random stream, untouched
    assert torch.get_num_threads() == threads
    # the file's own entry stays (its doing); modelpress's entry for its folder is gone
    assert str(factory_file.parent.resolve()) not in sys.path
    assert [p for p in sys.path if p != "/somewhere/else"] == path_before
    sys.path.remove("/somewhere/else")


def test_training_leaves_the_callers_random_stream_and_threads(factory_file: Path) -> None:
    import torch

    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    recipe = build_recipe(tiny_recipe(_model(factory_file), data=DATA))
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    train_and_save(recipe, TrainConfig(epochs=1), factory_file.parent / "m.pt")
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads
