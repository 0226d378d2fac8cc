"""--resume on a run whose saved outputs were damaged: each such node is measured again, says
why in the record and on the console, and the run finishes (it once ended in "internal error:
BadZipFile")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.recipes import run_steps
from modelpress.core.observer import Observer
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline

SCRIPT = {"type": "export", "format": "torchscript"}


class _Said(Observer):
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def event(self, kind: str, message: str, **fields: object) -> None:
        self.lines.append((kind, message))


@pytest.fixture
def finished(trained_checkpoint: Path, tmp_path: Path) -> dict[str, Path]:
    """A finished run: the baseline's and the TorchScript node's outputs.npz, by node id."""
    record = run_steps(trained_checkpoint, tmp_path / "run", SCRIPT)
    keys = {n["id"]: n["key"] for n in record["nodes"]}
    return {i: tmp_path / "run/nodes" / k / "outputs.npz" for i, k in keys.items()}


def _resume(trained_checkpoint: Path, tmp_path: Path) -> tuple[dict, list[tuple[str, str]]]:
    from helpers.recipes import tiny_recipe

    data = {"source": "builtin:digits", "max_samples": 900}
    recipe = build_recipe(tiny_recipe(str(trained_checkpoint), data=data, steps=[SCRIPT]))
    said = _Said()
    return pipeline.run(recipe, out=tmp_path / "run", resume=True, observer=said), said.lines


def test_truncated_outputs_are_measured_again_and_say_so(
    finished: dict[str, Path], trained_checkpoint: Path, tmp_path: Path
) -> None:
    for path in finished.values():
        path.write_bytes(path.read_bytes()[:100])  # a copy cut short

    record, said = _resume(trained_checkpoint, tmp_path)

    base, step = record["nodes"][0], record["steps"][0]
    assert (
        base["reran"]
        == f"{finished['baseline']} cannot be read (BadZipFile: File is not a zip file)"
    )
    assert step["reran"].startswith(f"{finished[step['id']]} cannot be read (")
    assert step["status"] == "ok" and step["reused"] is False
    assert record["nodes"][1]["reran"] == step["reran"]
    warnings = [m for kind, m in said if kind == "warning"]
    assert f"baseline: {base['reran']}; measuring it again" in warnings
    assert f"{step['name']}: {step['reran']}; running it again" in warnings
    with np.load(finished["baseline"]) as z:  # written again, whole
        assert len(z["arr_0"]) == record["baseline"]["metrics"]["samples"]


def test_outputs_of_another_shape_are_measured_again(
    finished: dict[str, Path], trained_checkpoint: Path, tmp_path: Path
) -> None:
    step_outputs = next(p for i, p in finished.items() if i != "baseline")
    np.savez(step_outputs, np.zeros((3, 7), np.float32))  # readable, but not this model's

    record, _ = _resume(trained_checkpoint, tmp_path)

    assert "reran" not in record["nodes"][0]  # the baseline's were fine: reused
    assert (
        record["steps"][0]["reran"]
        == f"{step_outputs} does not hold {record['baseline']['metrics']['samples']} samples of every output"
    )
