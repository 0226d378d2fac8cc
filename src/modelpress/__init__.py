"""modelpress: a PyTorch model and its data in; small, fast, verified artifacts out.

    import modelpress as mp
    recipe = mp.load_recipe("recipe.yaml")        # validated whole, before any work
    record = mp.run(recipe, out="runs/x")         # baseline, steps, artifacts, record.json, report
    art = mp.apply(artifact, mp.ExportConfig(format="onnx"), ctx)   # one step, by hand
    result = mp.quantize(module, (x, y), method="static", formats=["onnx"], out="runs/q")
    result = mp.compress(module, "builtin:digits", steps=[...], out="runs/c")  # typed record

Names resolve on first use, so ``import modelpress`` loads neither onnx nor onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_recipe": "modelpress.core.recipe",
    "Recipe": "modelpress.core.recipe",
    "run": "modelpress.engine.pipeline",
    "Artifact": "modelpress.core.artifact",
    "build_context": "modelpress.engine.context",
    "StepConfig": "modelpress.core.registry",
    "register_step": "modelpress.core.registry",
    "TorchScriptConfig": "modelpress.steps.torchscript",
    "ExportConfig": "modelpress.steps.export",
    "QuantizeConfig": "modelpress.steps.quantize",
    "QATConfig": "modelpress.steps.qat",
    "DistillConfig": "modelpress.steps.distill",
    "PruneConfig": "modelpress.steps.prune",
    "TrainConfig": "modelpress.training",
    "ModelpressError": "modelpress.errors",
    "compress": "modelpress.api",
    "quantize": "modelpress.api",
    "RunResult": "modelpress.api",
    "RunRecord": "modelpress.core.record_schema",
}

__all__ = [*sorted(_EXPORTS), "apply"]


def apply(artifact: Any, config: Any, ctx: Any) -> Any:
    """Run one step's handler: ``Artifact`` in, ``Artifact`` out (no measuring, no record)."""
    from modelpress.core.registry import handler_for

    return handler_for(config)(artifact, config, ctx)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'modelpress' has no attribute '{name}'")
