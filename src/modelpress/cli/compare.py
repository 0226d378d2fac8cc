"""``modelpress compare``: each technique applied alone to the same baseline (a branch of the
step graph each), measured in its own runtime; the report opens with the techniques side by
side and names the best for size, speed and accuracy. ``--save-recipe`` writes the recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from modelpress import techniques as tech
from modelpress.cli.common import (
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
    model_recipe,
    parse_kwargs,
    run_shortcut,
    user_errors,
)


def _half_width(model: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Student arguments for a zoo model that takes ``width_mult``: half its width."""
    if not model.startswith("zoo:"):
        return None
    from modelpress import zoo

    try:
        accepted = zoo.arguments(zoo.get(model.removeprefix("zoo:")))
    except Exception:
        return None
    if accepted is None or "width_mult" not in accepted:
        return None
    return {**kwargs, "width_mult": float(kwargs.get("width_mult", 1.0)) / 2}


def compare(
    model: Model,
    data: Data,
    techniques: Annotated[
        str | None,
        typer.Option(
            "--techniques",
            help=f"Comma-separated, each applied alone: {', '.join(tech.TECHNIQUES)} "
            "(default: all).",
        ),
    ] = None,
    formats: Annotated[
        str, typer.Option("--formats", help="Where quantizations go: onnx, tflite, openvino.")
    ] = "onnx",
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Fine-tuning / training epochs per technique.")
    ] = 3,
    student: Annotated[
        str | None,
        typer.Option(
            "--student",
            help="distill: the student (default for a zoo model with width_mult: half width).",
        ),
    ] = None,
    student_kwargs: Annotated[
        str | None, typer.Option("--student-kwargs", help="Student factory arguments (JSON).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/compare"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse every finished node of the run in --out.")
    ] = False,
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
    """Apply each technique alone to the baseline and compare them side by side."""
    chosen = tech.parse(techniques, tech.TECHNIQUES, "--techniques") if techniques else None
    names = tech.parse(formats, tech.FORMATS, "--formats")
    kwargs = parse_kwargs(student_kwargs, "--student-kwargs")
    if student is None and "distill" in (chosen or tech.DEFAULT):
        auto = _half_width(model, parse_kwargs(model_kwargs))
        if auto is not None:
            student, kwargs = model, {**auto, **kwargs}
        elif chosen is None:  # not asked for by name: leave it out, and say so
            console.print(Text("distill left out: it needs --student (a smaller model source)"))
    listed = chosen or [t for t in tech.DEFAULT if t != "distill" or student]
    for line in tech.left_out(listed, names):  # a precision the format does not export
        console.print(Text(line))
    steps, compared = tech.steps(
        listed, names, epochs=epochs, student=student, student_kwargs=kwargs
    )
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
        steps=steps,
        compare=compared,
        out=str(out),
    )
    flags = {"steps.*.student": "--student", "steps.*.student_kwargs": "--student-kwargs"}
    run_shortcut(recipe, out, force, save_recipe, flags, resume=resume)


def register() -> None:
    app.command()(user_errors(compare))
