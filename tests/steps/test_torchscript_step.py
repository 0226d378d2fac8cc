from pathlib import Path

import pytest
import torch

from modelpress.errors import StepError
from modelpress.steps.torchscript import TorchScriptConfig, to_torchscript


def test_torchscript_writes_pt_and_ptl_that_load_and_match(ctx_and_model, tmp_path: Path) -> None:
    ctx, base = ctx_and_model
    art = to_torchscript(base, TorchScriptConfig(), ctx, tmp_path / "model-fp32.pt")
    assert art.format == "torchscript" and art.parent == "baseline"
    x = ctx.example_inputs(4)
    loaded = torch.jit.load(str(art.path))
    from torch.jit.mobile import _load_for_lite_interpreter

    lite = _load_for_lite_interpreter(str(art.extra_files[0]))
    want = base.module(*x)
    assert torch.allclose(loaded(*x), want, atol=1e-5)
    assert torch.allclose(lite(*x), want, atol=1e-5)
    assert art.details["output_check"]["max_abs_diff"] <= 1e-5


def test_optimize_for_mobile_is_recorded_as_skipped_with_the_reason(
    ctx_and_model, tmp_path: Path
) -> None:
    ctx, base = ctx_and_model
    art = to_torchscript(base, TorchScriptConfig(optimize_for_mobile=True), ctx, tmp_path / "m.pt")
    try:
        from torch.utils.mobile_optimizer import optimize_for_mobile

        optimize_for_mobile(torch.jit.script(torch.nn.Linear(2, 2)))
        available = True
    except Exception:
        available = False
    if available:
        assert art.details["optimized_for_mobile"] is True
    else:  # one plain sentence, never PyTorch's internal assert asking for a bug report
        assert art.notes == [
            "not optimized for mobile: this PyTorch build has no XNNPACK, which "
            "optimize_for_mobile needs; the model is saved frozen, as traced"
        ]
        assert art.details["optimized_for_mobile"] is False


def test_an_output_mismatch_fails_the_step(ctx_and_model, tmp_path: Path) -> None:
    ctx, base = ctx_and_model

    class Noisy(torch.nn.Module):  # traced once, differs on every call: the check must catch it
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) + torch.rand(1) * 10

    base.module = Noisy(base.module)
    with pytest.raises(StepError, match="TorchScript output differs from eager: max"):
        to_torchscript(base, TorchScriptConfig(), ctx, tmp_path / "m.pt")
