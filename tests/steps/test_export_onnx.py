from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from modelpress.errors import StepError
from modelpress.runtimes import runtime_for
from modelpress.steps.export import ExportConfig
from modelpress.steps.export.onnx import to_onnx


def test_onnx_export_checks_loads_in_ort_and_matches_torch(ctx_and_model, tmp_path: Path) -> None:
    ctx, base = ctx_and_model
    art = to_onnx(base, ExportConfig(), ctx, tmp_path / "model-fp32.onnx")
    onnx.checker.check_model(str(art.path))
    assert art.details["dynamic_batch"] is True and art.details["opset"] == 18
    rt = runtime_for(art, threads=2)
    assert rt.fixed_batch is None
    x = ctx.data.validation.inputs[0][:37]  # an odd batch: the batch dimension is dynamic
    got = rt.run([x])
    want = base.module(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (37, 10)
    assert np.abs(got - want).max() <= 1e-4


def test_a_model_the_exporter_cannot_capture_fails_with_the_reason(
    ctx_and_model, tmp_path: Path
) -> None:
    ctx, base = ctx_and_model

    class DataDependent(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = int(x.sum().item() > 0) + 1  # a shape that depends on the data
            return torch.zeros(x.shape[0], 10 * n).numpy()  # leaves torch: not exportable

    base.module = DataDependent()
    with pytest.raises(StepError, match=r"torch\.onnx\.export failed: "):
        to_onnx(base, ExportConfig(dynamic_batch=False), ctx, tmp_path / "m.onnx")


def test_corrupt_onnx_file_gets_a_clear_error(ctx_and_model, tmp_path: Path) -> None:
    from modelpress.core.artifact import Artifact
    from modelpress.errors import ModelSourceError

    ctx, _ = ctx_and_model
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ModelSourceError, match=r"bad\.onnx: onnxruntime cannot load it"):
        runtime_for(Artifact("x", "onnx", ctx.input_specs, path=bad), threads=1)
