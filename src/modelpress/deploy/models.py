"""The models a user names for a cascade or a video, opened through modelpress's loading.

Only sources the user gave on the command line come here (a checkpoint, zoo:NAME, a deployed
file); a bundle's own stages open through ``deploy/bundle.open_stage_file``, which never hands a
name to the model loader.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from modelpress.deploy.routing import CascadeError


def open_model(
    source: str,
    data: str,
    threads: int | None,
    input_shape: str | None = None,
    task: str | None = None,
    trust: bool = False,
) -> tuple[Any, Any]:
    """(the context, the model as an artifact) for a model source the user named — never one a
    bundle names — through modelpress's loading: the data split as every command splits it
    (seed 0); ``task`` None: the task a cascade runs by default; ``trust``: the user's
    --trust-checkpoint-code."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.context import build_context
    from modelpress.tasks import CASCADE_TASK

    recipe: dict[str, Any] = {"model": source, "data": data, "task": task or CASCADE_TASK}
    if input_shape:
        recipe["input_shape"] = input_shape
    if threads:
        recipe["evaluate"] = {"threads": threads}
    if trust:
        recipe["trust_checkpoint_code"] = True
    return build_context(build_recipe(recipe, source))


def open_stage(
    source: str,
    data: str,
    threads: int | None,
    input_shape: str | None = None,
    task: str | None = None,
) -> tuple[Any, Any]:
    """(the model's runtime, the data as it loads them) for a model source the user named
    (``open_model``): a would-be stage measured outside a bundle, as the benchmarks do."""
    from modelpress.runtimes import runtime_for

    ctx, artifact = open_model(source, data, threads, input_shape, task)
    return runtime_for(artifact, ctx.threads), ctx.data


def stage_name(stages: list[str], i: int) -> str:
    """A stage's file stem; numbered when two stages share one (model-int8, model-fp32 …)."""
    stems = [Path(s).stem for s in stages]
    return stems[i] if stems.count(stems[i]) == 1 else f"{i}:{stems[i]}"


def bundle_stage(
    source: str,
    index: int,
    out: Path,
    data: str,
    threads: int | None,
    input_shape: str | None,
    task: str,
    trust: bool,
) -> tuple[str, Any, Any]:
    """(the stage's file name in the bundle, its runtime on that file, the data shaped for it).
    A deployed file is copied (OpenVINO's .bin with its .xml); a torch model the user named is
    traced to TorchScript, checked against the eager model on a real batch."""
    from modelpress.core.recipe import DataConfig
    from modelpress.deploy.bundle import deployed_kind, open_stage_file
    from modelpress.engine.context import load_configured_data
    from modelpress.errors import StepError
    from modelpress.sources.inputs import parse_input_shape
    from modelpress.steps.torchscript import TorchScriptConfig, to_torchscript

    src = Path(source)
    specs = parse_input_shape(input_shape) if input_shape else None
    kind = deployed_kind(src) if src.is_file() else None
    if kind is not None:
        name = f"stage{index}-{src.name}"
        shutil.copyfile(src, out / name)
        if kind == "openvino":
            weights = src.with_suffix(".bin")
            if not weights.is_file():
                raise CascadeError(f"stage {source}: its weights {weights} are missing")
            shutil.copyfile(weights, out / Path(name).with_suffix(".bin"))
        dataset = None
        if kind not in ("onnx", "tflite") and specs is None:  # shapes from the data
            dataset = load_configured_data(DataConfig(source=data), None)
            specs = dataset.input_specs()
        runtime, specs = open_stage_file(out / name, threads, specs)
        if dataset is None:
            try:
                dataset = load_configured_data(DataConfig(source=data), specs)
            except BaseException:
                runtime.close()
                raise
        return name, runtime, dataset
    ctx, artifact = open_model(source, data, threads, input_shape, task, trust)
    if artifact.module is None:
        raise CascadeError(f"stage {source}: not a torch model modelpress can bundle")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", src.stem if src.suffix else source).strip("._")
    name = f"stage{index}-{stem or 'model'}.ts"
    try:
        to_torchscript(artifact, TorchScriptConfig(lite=False), ctx, out / name)
    except StepError as e:
        raise CascadeError(
            f"stage {source}: cannot be traced to TorchScript for the bundle ({e}); export it "
            "yourself (.onnx, .tflite, .pt2) and pass that file"
        ) from None
    runtime, _ = open_stage_file(out / name, threads, ctx.input_specs)
    return name, runtime, ctx.data
