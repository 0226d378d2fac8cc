"""Runtimes return every output of a model, in order; the record names them, metrics read the
task's output, and verification compares every one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline


def _two_headed(tmp_path: Path) -> str:
    path = tmp_path / "two_heads.py"
    path.write_text(
        textwrap.dedent(
            """
            from torch import nn


            class TwoHeads(nn.Module):
                def __init__(self, num_classes=10):
                    super().__init__()
                    self.body = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.ReLU())
                    self.head = nn.Linear(32, num_classes)

                def forward(self, x):
                    features = self.body(x)
                    return self.head(features), features  # (B, 10) logits, (B, 32) features


            def build(num_classes=10):
                return TwoHeads(num_classes)
            """
        )
    )
    return f"{path}:build"


def test_every_output_is_measured_and_verified(tmp_path: Path) -> None:
    steps = [{"type": "export", "format": "onnx"}, {"type": "torchscript"}]
    data = {"source": "builtin:digits", "max_samples": 200}
    recipe = build_recipe(tiny_recipe(_two_headed(tmp_path), data=data, steps=steps))
    record = pipeline.run(recipe, out=tmp_path / "run")
    assert [o["shape"] for o in record["baseline"]["outputs"]] == [[10], [32]]
    for art in record["artifacts"]:
        # untrained, so likely at chance (`collapsed`): never `degraded`, it reproduces its parent
        assert art["status"] in ("ok", "collapsed"), art
        assert not any(str(n).startswith("degraded") for n in art["notes"]), art["notes"]
        assert [o["shape"] for o in art["outputs"]] == [[10], [32]], art["name"]
        each = art["verification"]["outputs"]
        assert len(each) == 2 and all(o["max_abs_diff"] < 1e-3 for o in each)
        # the classification metrics read the logits, not the features
        assert art["metrics"]["top1"] == record["baseline"]["metrics"]["top1"]
    saved = np.load(tmp_path / "run/nodes" / record["nodes"][0]["key"] / "outputs.npz")
    assert saved["arr_0"].shape[1:] == (10,) and saved["arr_1"].shape[1:] == (32,)


def test_onnx_runtime_names_its_outputs(tmp_path: Path) -> None:
    import torch

    from modelpress.core.artifact import Artifact
    from modelpress.core.inputs import InputSpec
    from modelpress.runtimes import runtime_for

    class Pair(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x * 2, x.sum(dim=1, keepdim=True)

    path = tmp_path / "pair.onnx"
    torch.onnx.export(
        Pair(), (torch.ones(1, 4),), str(path), input_names=["x"], output_names=["double", "sum"],
        dynamo=False,
    )  # fmt: skip
    rt = runtime_for(Artifact("pair", "onnx", [InputSpec("x", (1, 4))], path=path), threads=1)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    double, total = rt.predict_all([x], batch_size=2)
    assert rt.output_names() == ["double", "sum"]
    np.testing.assert_allclose(double, 2 * x)
    np.testing.assert_allclose(total[:, 0], x.sum(1))
    np.testing.assert_allclose(rt.predict([x], batch_size=2), 2 * x)  # the first output
