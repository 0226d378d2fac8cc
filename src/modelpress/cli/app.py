"""``modelpress``: typer app. Every shortcut command builds a Recipe, the same path as ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelpress.api import quantize_steps
from modelpress.cli import cascade, catalog, compare, compress, optimize, train, video
from modelpress.cli.common import (
    MODEL_FLAGS,
    Data,
    Force,
    Kwargs,
    Model,
    PreprocessFlag,
    SaveRecipe,
    Shape,
    Task,
    Threads,
    TrustCode,
    Weights,
    app,
    console,
    finish,
    model_recipe,
    rich_observer,
    run_shortcut,
    state,
    step_flags,
    user_errors,
)
from modelpress.core.formats import METHOD_PRECISION
from modelpress.errors import ModelpressError


# ---------------------------------------------------------------- commands
@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Show the libraries' own output (absl, oneDNN, XNNPACK banners, warnings, "
            "torchao's and Ray's logs).",
        ),
    ] = False,
) -> None:
    from modelpress.chatter import set_verbose

    state["debug"] = debug
    set_verbose(verbose)


@app.command()
@user_errors
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe file (.yaml or .json).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run directory (default: recipe's out, else runs/NAME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip steps finished in an earlier run of this recipe.")
    ] = False,
    force: Force = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe value: key.path=value (repeatable)."),
    ] = None,
    trust: TrustCode = False,
) -> None:
    """Run a recipe: baseline, every step, each artifact verified and measured; write the report.

    Step types and their keys: modelpress steps."""
    from modelpress.core.recipe import load_recipe
    from modelpress.engine import pipeline

    overrides = [*(set_ or []), *(["trust_checkpoint_code=true"] if trust else [])]
    parsed = load_recipe(recipe, overrides)
    root = out or pipeline.default_out(parsed)
    finish(
        pipeline.run(parsed, out=root, resume=resume, force=force, observer=rich_observer()), root
    )


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/demo"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer epochs and timing repeats (for tests).")
    ] = False,
    threads: Threads = None,
    cascade_demo: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Instead: a fast INT8 and a precise model on builtin:digits-manipulated, built "
            "into a certified cascade (OUT/bundle).",
        ),
    ] = False,
) -> None:
    """Train a zoo CNN on the built-in digits and run the demo recipe (TorchScript + ONNX)."""
    from modelpress.demo import run_cascade_demo, run_demo

    if cascade_demo:
        from modelpress.cli.cascade import show

        cascade, figures = run_cascade_demo(
            out, quick=quick, threads=threads, observer=rich_observer()
        )
        try:
            show(figures, cascade.meta["bound"], [s.certificate for s in cascade.stages])
        finally:
            cascade.close()
        console.print(
            f"bundle: {out / 'bundle'} (modelpress cascade eval {out / 'bundle'} --data ...)"
        )
        return

    record = run_demo(out, quick=quick, threads=threads, observer=rich_observer())
    console.print(f"replay with: modelpress run {out / 'recipe.yaml'} --out {out} --resume")
    finish(record, out)


@app.command()
@user_errors
def bench(
    model: Model,
    data: Data,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    preprocess: PreprocessFlag = None,
    task: Task = None,
    threads: Threads = None,
    batch_sizes: Annotated[
        str, typer.Option("--batch-sizes", help="Latency at the first, throughput at the largest.")
    ] = "1,32",
    repeats: Annotated[int, typer.Option("--repeats", min=3)] = 50,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 10,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the analysis as JSON.")
    ] = None,
    trust: TrustCode = False,
) -> None:
    """Baseline analysis of one model: size, params, MACs, latency, throughput, memory, accuracy."""
    from rich.text import Text

    from modelpress.core.recipe import load_recipe
    from modelpress.core.rundir import check_output, write_json_atomic
    from modelpress.engine.context import build_context
    from modelpress.engine.measure import analyze
    from modelpress.report.terminal import artifact_table

    if json_out:
        check_output(json_out, "--json", folder=False, example="bench.json")
    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise ModelpressError(
            f"--batch-sizes '{batch_sizes}': integers separated by commas, e.g. 1,32"
        ) from None
    evaluate = {"batch_sizes": sizes, "repeats": repeats, "warmup": warmup}
    recipe = load_recipe(
        model_recipe(
            model,
            data,
            weights,
            model_kwargs,
            input_shape,
            task,
            threads,
            trust_checkpoint_code=trust,
            preprocess=preprocess,
            evaluate=evaluate,
        ),
        flags=MODEL_FLAGS
        | {
            "evaluate.batch_sizes": "--batch-sizes",
            "evaluate.repeats": "--repeats",
            "evaluate.warmup": "--warmup",
        },
    )
    observer = rich_observer()
    ctx, baseline = build_context(recipe, observer)
    entry, _ = analyze(baseline, ctx)
    entry["task"], entry["source"] = ctx.task.name, model
    console.print(artifact_table(entry, ctx.task.name))
    for note in entry["notes"]:  # why it is collapsed: at chance, non-finite outputs
        if str(note).startswith("collapsed"):
            console.print(Text(str(note), style="red"))
    if json_out:
        write_json_atomic(json_out, entry)
        console.print(f"wrote {json_out}")


@app.command()
@user_errors
def export(
    model: Model,
    data: Data,
    format: Annotated[str, typer.Option("--format", help="onnx | torchscript")] = "onnx",
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/export"),
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    preprocess: PreprocessFlag = None,
    task: Task = None,
    threads: Threads = None,
    opset: Annotated[int, typer.Option("--opset")] = 18,
    force: Force = False,
    save_recipe: SaveRecipe = None,
    trust: TrustCode = False,
) -> None:
    """Export one artifact; verify it, evaluate and benchmark it in its own runtime."""
    step: dict[str, Any] = {"type": "export", "format": format}
    if format == "onnx":
        step["opset"] = opset
    recipe = model_recipe(
        model,
        data,
        weights,
        model_kwargs,
        input_shape,
        task,
        threads,
        trust_checkpoint_code=trust,
        preprocess=preprocess,
        steps=[step],
        out=str(out),
    )
    run_shortcut(recipe, out, force, save_recipe, step_flags("format", "opset"))


@app.command()
@user_errors
def quantize(
    model: Model,
    data: Data,
    method: Annotated[
        str, typer.Option("--method", help="static (INT8, calibrated) | dynamic | fp16")
    ] = "static",
    formats: Annotated[
        str, typer.Option("--formats", help="Comma-separated: onnx, tflite, openvino")
    ] = "onnx",
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/quantize"),
    calibration_samples: Annotated[int | None, typer.Option("--calibration-samples", min=1)] = None,
    per_channel: Annotated[bool, typer.Option("--per-channel/--per-tensor")] = True,
    calibration: Annotated[
        str, typer.Option("--calibration", help="minmax | entropy | percentile")
    ] = "minmax",
    max_accuracy_drop: Annotated[
        float | None,
        typer.Option(
            "--max-accuracy-drop", help="Points; sensitive layers stay FP32 until it holds."
        ),
    ] = None,
    io: Annotated[
        str | None,
        typer.Option(
            "--io",
            help="uint8: ONNX and TFLite models take uint8 NHWC camera frames (permute, cast, "
            "/255 in the graph); float | int8: the TFLite int8 model's I/O type to insist on",
        ),
    ] = None,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    preprocess: PreprocessFlag = None,
    task: Task = None,
    threads: Threads = None,
    force: Force = False,
    save_recipe: SaveRecipe = None,
    trust: TrustCode = False,
) -> None:
    """Quantize to every requested format; verify, evaluate and benchmark each in its runtime."""
    if method not in METHOD_PRECISION:
        raise ModelpressError(f"--method '{method}': use static, dynamic or fp16")
    options: dict[str, Any] = {}
    if method == "static":
        options = {"per_channel": per_channel}
        if calibration != "minmax":
            options["calibration"] = calibration
        if calibration_samples:
            options["calibration_samples"] = calibration_samples
        if io:
            options["io"] = io
    names = [f.strip() for f in formats.split(",") if f.strip()]
    twice = sorted({f for f in names if names.count(f) > 1})
    if twice:
        raise ModelpressError(f"--formats: {', '.join(twice)} given twice; name each format once")
    extra: dict[str, Any] = {"steps": quantize_steps(method, names, options), "out": str(out)}
    if max_accuracy_drop is not None:
        extra["targets"] = {"max_accuracy_drop": max_accuracy_drop}
    recipe = model_recipe(
        model,
        data,
        weights,
        model_kwargs,
        input_shape,
        task,
        threads,
        trust_checkpoint_code=trust,
        preprocess=preprocess,
        **extra,
    )
    flags = step_flags(
        "calibration",
        "calibration_samples",
        "io",
        format="--formats",
        precision="--method",
        per_channel="--per-channel/--per-tensor",
    )
    # a step-level check (e.g. torchscript exports fp32 only) comes of the formats asked
    flags |= {"steps.*": "--formats", "targets.max_accuracy_drop": "--max-accuracy-drop"}
    run_shortcut(recipe, out, force, save_recipe, flags)


train.register()  # listed after the commands above, in this order
catalog.register()  # zoo, steps
compress.register()  # distill, prune
compare.register()
cascade.register()
video.register()
optimize.register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
