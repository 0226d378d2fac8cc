"""``torchscript``: trace (or script), freeze, optionally optimize for mobile; save .pt and .ptl.

The saved file is reloaded and checked against the eager model on a real batch (rtol/atol);
a mismatch fails the step. ``optimize_for_mobile`` needs XNNPACK in the torch build: where it is
missing the pass is recorded as skipped with the reason, never silently dropped.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.registry import StepConfig, Takes, register_step
from modelpress.errors import StepError, first_line
from modelpress.evaluate.compare import compare_outputs
from modelpress.sources.models import eval_mode, first_tensor


class TorchScriptConfig(StepConfig):
    type: Literal["torchscript"] = "torchscript"
    method: Literal["trace", "script"] = "trace"
    freeze: bool = True
    optimize_for_mobile: bool = False
    lite: bool = True  # also write a lite-interpreter .ptl
    rtol: float = Field(1e-4, ge=0)
    atol: float = Field(1e-5, ge=0)

    def makes(self) -> Takes:
        return Takes("torchscript", ())  # at its input's precision


def to_torchscript(
    artifact: Artifact, config: TorchScriptConfig, ctx: StepContext, out: Path
) -> Artifact:
    module = artifact.module
    if module is None:
        raise StepError(f"{config.display_name}: needs a torch model as input")
    example = ctx.example_inputs(2)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; we say so in docs
        try:
            if config.method == "trace":
                scripted = torch.jit.trace(eval_mode(module), tuple(example), check_trace=False)
            else:
                scripted = torch.jit.script(eval_mode(module))
        except Exception as e:
            raise StepError(f"torch.jit.{config.method} failed: {first_line(e)}") from None
        scripted = scripted.eval()
        if config.freeze:
            scripted = torch.jit.freeze(scripted)
        if config.optimize_for_mobile:
            from torch.utils.mobile_optimizer import optimize_for_mobile

            try:
                scripted = optimize_for_mobile(scripted)
            except Exception as e:
                notes.append(_not_optimized(e))
        out.parent.mkdir(parents=True, exist_ok=True)
        scripted.save(str(out))
        extra = []
        if config.lite:
            ptl = out.with_suffix(".ptl")
            scripted._save_for_lite_interpreter(str(ptl))
            from torch.jit.mobile import _load_for_lite_interpreter

            _load_for_lite_interpreter(str(ptl))  # proves the .ptl loads
            extra.append(ptl)
    reloaded = torch.jit.load(str(out), map_location="cpu").eval()
    with torch.inference_mode():
        want = first_tensor(module(*example))
        got = first_tensor(reloaded(*example))
    check = compare_outputs(got.float().numpy(), want.float().numpy())
    if not torch.allclose(got.float(), want.float(), rtol=config.rtol, atol=config.atol):
        raise StepError(
            f"TorchScript output differs from eager: max |Δ| {check['max_abs_diff']:.3g} "
            f"(rtol {config.rtol}, atol {config.atol})"
        )
    return artifact.child(
        "torchscript",
        artifact.precision,
        out,
        config.display_name,
        extra_files=extra,
        notes=notes,
        details={
            "method": config.method,
            "frozen": config.freeze,
            "optimized_for_mobile": config.optimize_for_mobile and not notes,
            "output_check": {k: check[k] for k in ("max_abs_diff", "mean_abs_diff")}
            | {"rtol": config.rtol, "atol": config.atol},
        },
    )


def _not_optimized(error: Exception) -> str:
    """Why optimize_for_mobile did not run, in one plain sentence. Without XNNPACK (PyTorch's
    CPU wheels) it fails an internal assert whose text asks to report a bug to PyTorch."""
    text = str(error)
    if "XNNPACK" in text:
        return (
            "not optimized for mobile: this PyTorch build has no XNNPACK, which "
            "optimize_for_mobile needs; the model is saved frozen, as traced"
        )
    assert_text = r"^.*INTERNAL ASSERT FAILED at \S+ please report a bug to PyTorch\.\s*"
    plain = type(error)(re.sub(assert_text, "", text)) if re.match(assert_text, text) else error
    return f"not optimized for mobile: optimize_for_mobile failed ({first_line(plain, 160)})"


@register_step(TorchScriptConfig)
def _torchscript(artifact: Artifact, config: TorchScriptConfig, ctx: StepContext) -> Artifact:
    out = ctx.artifact_path(config.display_name, f"model-{artifact.precision}", ".pt")
    return to_torchscript(artifact, config, ctx, out)
