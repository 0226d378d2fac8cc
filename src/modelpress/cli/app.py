"""``modelpress``: typer app. Every shortcut command builds a Recipe, the same path as ``run``."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from modelpress.errors import ModelpressError, first_line

app = typer.Typer(
    name="modelpress",
    help="Turn a PyTorch model and its data into small, fast, verified artifacts, "
    "every number measured on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Logs and CI are not terminals: give tables room instead of rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
_state = {"debug": False}

# ---------------------------------------------------------------- shared options
Model = Annotated[
    str,
    typer.Argument(
        help="zoo:NAME, package.module:factory, file.py:factory, "
        "a .pt checkpoint/TorchScript file or a .pt2 ExportedProgram."
    ),
]
Data = Annotated[
    str,
    typer.Option("--data", help="builtin:digits, builtin:breast_cancer, folder:PATH or npz:PATH."),
]
Weights = Annotated[
    Path | None, typer.Option("--weights", help="State dict (.pt/.safetensors) for the model.")
]
Kwargs = Annotated[
    str | None,
    typer.Option("--model-kwargs", help="Factory arguments as JSON, e.g. '{\"width_mult\": 0.5}'."),
]
Shape = Annotated[
    str | None,
    typer.Option("--input-shape", help="N,C,H,W, or name:dims[:dtype];... for several inputs."),
]
Task = Annotated[
    str | None,
    typer.Option("--task", help="classification | binary | fidelity (default: from the data)."),
]
Threads = Annotated[
    int | None, typer.Option("--threads", min=1, help="Inference threads (default: all cores).")
]
SaveRecipe = Annotated[
    Path | None, typer.Option("--save-recipe", help="Write the equivalent recipe here.")
]


def _kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelpressError(
            f"--model-kwargs: not valid JSON ({e.msg}); e.g. '{{\"width_mult\": 0.5}}'"
        ) from None
    if not isinstance(value, dict):
        raise ModelpressError("--model-kwargs: must be a JSON object of argument names to values")
    return value


def _model_recipe(
    model: str,
    data: str,
    weights: Path | None,
    model_kwargs: str | None,
    input_shape: str | None,
    task: str | None,
    threads: int | None,
    **extra: Any,
) -> dict[str, Any]:
    recipe: dict[str, Any] = {"model": model, "data": data, "model_kwargs": _kwargs(model_kwargs)}
    if weights:
        recipe["weights"] = str(weights)
    if input_shape:
        recipe["input_shape"] = input_shape
    if task:
        recipe["task"] = task
    evaluate = dict(extra.pop("evaluate", {}))
    if threads:
        evaluate["threads"] = threads
    if evaluate:
        recipe["evaluate"] = evaluate
    recipe.update(extra)
    return recipe


def _observer() -> Any:
    from modelpress.cli.observer import RichObserver

    return RichObserver(console)


def _show_run(record: dict[str, Any], out: Path) -> None:
    from modelpress.report.terminal import progression_table, targets_table

    console.print(progression_table(record))
    table = targets_table(record)
    if table is not None:
        console.print(table)
    rec = record.get("recommendation") or {}
    if rec:
        mark = "[green]✔[/]" if rec.get("met") else "[red]✘[/]"
        console.print(f"{mark} recommendation: [bold]{rec.get('name')}[/] — {rec.get('why')}")
    console.print(f"run directory: {out}  (report.md, report.html, record.json)")


def _finish(record: dict[str, Any], out: Path) -> None:
    """Print the run's tables; a failed step makes the exit code 1 (the run itself finished)."""
    _show_run(record, out)
    if any(s.get("status") == "failed" for s in record.get("steps", [])):
        raise typer.Exit(1)


def _run_shortcut(recipe: Any, out: Path, force: bool, save_recipe: Path | None) -> None:
    """A shortcut command's recipe: optionally written out (replayable), then run."""
    from modelpress.core import pipeline
    from modelpress.core.recipe import dump_recipe

    if save_recipe:
        dump_recipe(recipe, save_recipe)
        console.print(f"wrote {save_recipe}")
    _finish(pipeline.run(recipe, out=out, force=force, observer=_observer()), out)


def _user_errors(fn: Callable[..., None]) -> Callable[..., None]:
    """User errors print one line and exit 2 (traceback only with --debug); anything else is a
    bug in modelpress and says so."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except ModelpressError as e:
            if _state["debug"]:
                traceback.print_exc()
            err_console.print(f"[red]error:[/] {e}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; finished steps are kept (--resume continues)")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:
            if _state["debug"]:
                raise
            err_console.print(
                f"[red]internal error:[/] {first_line(e)} "
                "(a bug in modelpress: rerun with --debug for the traceback and report it)",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


# ---------------------------------------------------------------- commands
@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
@_user_errors
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe file (.yaml or .json).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run directory (default: recipe's out, else runs/NAME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip steps finished in an earlier run of this recipe.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Start over in a directory that holds a run.")
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe value: key.path=value (repeatable)."),
    ] = None,
) -> None:
    """Run a recipe: baseline, every step, each artifact verified and measured; write the report."""
    from modelpress.core import pipeline
    from modelpress.core.recipe import load_recipe

    parsed = load_recipe(recipe, set_ or [])
    root = out or pipeline.default_out(parsed)
    _finish(pipeline.run(parsed, out=root, resume=resume, force=force, observer=_observer()), root)


@app.command()
@_user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/demo"),
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer epochs and timing repeats (for tests).")
    ] = False,
    threads: Threads = None,
) -> None:
    """Train a zoo CNN on the built-in digits and run the demo recipe (TorchScript + ONNX)."""
    from modelpress.demo import run_demo

    record = run_demo(out, quick=quick, threads=threads, observer=_observer())
    console.print(f"replay with: modelpress run {out / 'recipe.yaml'} --out {out} --resume")
    _finish(record, out)


@app.command()
@_user_errors
def bench(
    model: Model,
    data: Data,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
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
) -> None:
    """Baseline analysis of one model: size, params, MACs, latency, throughput, memory, accuracy."""
    from modelpress.core.context import build_context
    from modelpress.core.recipe import load_recipe
    from modelpress.core.rundir import write_json_atomic
    from modelpress.evaluate.analyze import analyze
    from modelpress.report.terminal import artifact_table

    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise ModelpressError(
            f"--batch-sizes '{batch_sizes}': integers separated by commas, e.g. 1,32"
        ) from None
    evaluate = {"batch_sizes": sizes, "repeats": repeats, "warmup": warmup}
    recipe = load_recipe(
        _model_recipe(
            model, data, weights, model_kwargs, input_shape, task, threads, evaluate=evaluate
        )
    )
    observer = _observer()
    ctx, baseline = build_context(recipe, observer)
    entry, _ = analyze(baseline, ctx)
    entry["task"], entry["source"] = ctx.task, model
    console.print(artifact_table(entry, ctx.task))
    if json_out:
        write_json_atomic(json_out, entry)
        console.print(f"wrote {json_out}")


@app.command()
@_user_errors
def export(
    model: Model,
    data: Data,
    format: Annotated[str, typer.Option("--format", help="onnx | torchscript")] = "onnx",
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/export"),
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    task: Task = None,
    threads: Threads = None,
    opset: Annotated[int, typer.Option("--opset")] = 18,
    force: Annotated[
        bool, typer.Option("--force", help="Start over in a directory that holds a run.")
    ] = False,
    save_recipe: SaveRecipe = None,
) -> None:
    """Export one artifact; verify it, evaluate and benchmark it in its own runtime."""
    from modelpress.core.recipe import load_recipe

    step: dict[str, Any] = {"type": "export", "format": format}
    if format == "onnx":
        step["opset"] = opset
    recipe = load_recipe(
        _model_recipe(
            model,
            data,
            weights,
            model_kwargs,
            input_shape,
            task,
            threads,
            steps=[step],
            out=str(out),
        )
    )
    _run_shortcut(recipe, out, force, save_recipe)


_PRECISION = {"static": "int8", "dynamic": "int8-dynamic", "fp16": "fp16"}


def quantize_steps(
    method: str, formats: list[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """For each format: its fp32 export (the reference in that runtime), then the quantized one."""
    steps: list[dict[str, Any]] = []
    for fmt in formats:
        quantized = {"type": "export", "format": fmt, "precision": _PRECISION[method], **options}
        if fmt != "tflite":
            quantized.pop("io", None)  # io applies to TFLite models only
        steps += [{"type": "export", "format": fmt}, quantized]
    return steps


@app.command()
@_user_errors
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
        typer.Option("--io", help="TFLite int8 model I/O to insist on: float | int8 | uint8"),
    ] = None,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    task: Task = None,
    threads: Threads = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start over in a directory that holds a run.")
    ] = False,
    save_recipe: SaveRecipe = None,
) -> None:
    """Quantize to every requested format; verify, evaluate and benchmark each in its runtime."""
    from modelpress.core.recipe import load_recipe

    if method not in _PRECISION:
        raise ModelpressError(f"--method '{method}': use static, dynamic or fp16")
    options: dict[str, Any] = {}
    if method == "static":
        options = {"per_channel": per_channel, "calibration": calibration}
        if calibration_samples:
            options["calibration_samples"] = calibration_samples
        if io:
            options["io"] = io
    names = [f.strip() for f in formats.split(",") if f.strip()]
    extra: dict[str, Any] = {"steps": quantize_steps(method, names, options), "out": str(out)}
    if max_accuracy_drop is not None:
        extra["targets"] = {"max_accuracy_drop": max_accuracy_drop}
    recipe = load_recipe(
        _model_recipe(model, data, weights, model_kwargs, input_shape, task, threads, **extra)
    )
    _run_shortcut(recipe, out, force, save_recipe)


@app.command()
@_user_errors
def train(
    model: Model,
    data: Data,
    out: Annotated[Path, typer.Option("--out", help="Checkpoint file to write (.pt).")],
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 10,
    lr: Annotated[float, typer.Option("--lr", min=0.0)] = 1e-3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw | adam | sgd")] = "adamw",
    scheduler: Annotated[
        str, typer.Option("--scheduler", help="cosine | step | plateau | none")
    ] = "cosine",
    early_stopping: Annotated[
        int | None, typer.Option("--early-stopping", help="Patience in epochs.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    task: Task = None,
    threads: Threads = None,
) -> None:
    """Train a model and save its weights with what is needed to reload them."""
    from pydantic import ValidationError

    from modelpress.core.recipe import load_recipe
    from modelpress.training import TrainConfig, train_and_save

    try:
        cfg = TrainConfig(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            scheduler=scheduler,
            early_stopping=early_stopping,
            seed=seed,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise ModelpressError(f"--{err['loc'][0]}: {err['msg']}") from None
    recipe = load_recipe(
        _model_recipe(model, data, weights, model_kwargs, input_shape, task, threads)
    )
    result, metrics = train_and_save(recipe, cfg, out, _observer())
    key = result.metric
    console.print(
        f"best {key} {result.best_metric:.4f} at epoch {result.best_epoch}"
        f"{' (stopped early)' if result.stopped_early else ''}; validation {key} "
        f"{metrics[key]:.4f}"
    )
    console.print(f"wrote {out}  (reload: modelpress bench {out} --data {data})")


@app.command()
@_user_errors
def zoo() -> None:
    """List the reference architectures (our own code; no downloads)."""
    from rich.table import Table

    from modelpress import zoo as zoo_mod

    table = Table(title="modelpress zoo")
    for col in ("name", "input", "default shape", "description"):
        table.add_column(col)
    for entry in zoo_mod.list_models():
        table.add_row(
            entry.name,
            entry.input_kind,
            ",".join(map(str, entry.default_input_shape)),
            entry.description,
        )
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
