"""``modelpress optimize``: the best pipeline under a budget, from a measured Pareto front
(``search/``). Exit 0 with a recommendation; 3 when no candidate meets every constraint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from modelpress import techniques as tech
from modelpress.cli.common import (
    Force,
    Kwargs,
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
    rich_observer,
    user_errors,
)
from modelpress.core.formats import exports
from modelpress.errors import ModelpressError

NOT_MET = 3
# precisions the default space tries, where every chosen format exports them (core/formats.py);
# int8-dynamic is left to recipes: static int8 is the faster INT8 on every format
SEARCHED = ("fp32", "fp16", "int8")


def default_space(
    model: str,
    model_kwargs: dict[str, Any],
    formats: list[str],
    epochs: int,
    student: str | None,
    student_kwargs: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """What a search tries when no recipe says: a student (given, or the zoo model at half
    width) or none; no pruning or 30 % / 50 % of channels; every precision of each format."""
    from modelpress.cli.compare import _half_width

    space: dict[str, dict[str, Any]] = {}
    if student is None:
        half = _half_width(model, model_kwargs)
        if half is not None:
            student, student_kwargs = model, {**half, **student_kwargs}
    if student is not None:
        space["distill"] = {
            "student": ["none", student],
            "student_kwargs": [student_kwargs],
            "epochs": 2 * epochs,
        }
    space["prune"] = {"method": "structured", "ratio": [0, 0.3, 0.5], "finetune_epochs": epochs}
    space["export"] = {
        "format": formats,
        "precision": [p for p in SEARCHED if all(exports(f, p) for f in formats)],
    }
    return space


def _table(trial: Any, total: int) -> None:
    from modelpress.search.report import accuracy_change

    p = trial.point or {}
    status = trial.status + (" (reused)" if trial.reused else "")
    parts = [
        f"trial {trial.index}/{total}",
        trial.pipeline.describe(),
        status,
    ]
    if p:
        parts.append(
            f"{accuracy_change(p['loss_pt'])}, {p['latency_ms']:.3g} ms, {p['size_mb']:.3g} MB"
        )
        parts.append(
            "on the front so far"
            if trial.on_front
            else "feasible"
            if trial.feasible
            else "misses a constraint"
        )
    if trial.reason:
        parts.append(trial.reason)
    console.print(Text(" · ".join(parts)))


def show(result: dict[str, Any], out: Path) -> None:
    from modelpress.search.report import ACCURACY, accuracy_change, recommended_line

    table = Table(title=Text("Pareto front (feasible candidates)"), header_style="bold")
    for h in ("candidate", "node", ACCURACY, "latency ms", "size MB"):
        table.add_column(Text(h), justify="right" if h.endswith(("ms", "MB")) else "left")
    pick = (result.get("recommendation") or {}).get("name")
    for f in result["front"]:
        mark = " ← recommended" if f["name"] == pick else ""
        table.add_row(
            *map(
                Text,
                [
                    f["name"] + mark,
                    str(f.get("node") or "—"),
                    accuracy_change(f["loss_pt"]),
                    f"{f['latency_ms']:.3g}",
                    f"{f['size_mb']:.3g}",
                ],
            )
        )
    if result["front"]:
        console.print(table)
    rec = result.get("recommendation")
    if rec:
        console.print(Text(recommended_line(rec)))
        if not rec.get("on_front", True):
            console.print(
                Text(
                    "  (not on the front drawn from the separate benchmarks: the side-by-side "
                    "race of the finalists decided)"
                )
            )
        if rec.get("recipe"):
            console.print(Text(f"its recipe: {rec['recipe']} (modelpress run reproduces it)"))
    else:
        console.print(Text("no candidate meets every constraint; the closest:"))
        for c in result.get("least_violating") or []:
            console.print(Text(f"  {c['name']}: misses {'; '.join(c['misses'])}"))
    console.print(
        Text(
            f"{result['candidates']} candidates measured, {result['feasible']} feasible, in "
            f"{result['seconds']:.0f} s; report: {out / 'optimize.html'}"
        )
    )


def optimize(
    model: Annotated[
        str,
        typer.Argument(help="The model (as for every command), or a recipe .yaml with optimize:."),
    ],
    data: Annotated[str | None, typer.Option("--data", help="The data source.")] = None,
    max_accuracy_drop: Annotated[
        float | None,
        typer.Option("--max-accuracy-drop", min=0, help="Points of the primary metric."),
    ] = None,
    max_size_mb: Annotated[
        float | None, typer.Option("--max-size-mb", min=0, help="The largest artifact, MB.")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option("--max-latency-ms", min=0, help="The slowest batch-1 median latency, ms."),
    ] = None,
    min_speedup: Annotated[
        float | None,
        typer.Option("--min-speedup", min=0, help="The least speed-up over the baseline."),
    ] = None,
    formats: Annotated[
        str, typer.Option("--formats", help="Export formats: onnx, tflite, openvino.")
    ] = "onnx",
    budget: Annotated[
        str | None, typer.Option("--budget", help="Time for the search: 90s, 20m, 1h30m.")
    ] = None,
    max_trials: Annotated[
        int | None,
        typer.Option(
            "--max-trials", min=1, help="Pipelines tried at most (beyond: Optuna TPE chooses)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Trials at once (above 1: on a local Ray).")
    ] = 1,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Join this Ray cluster for the trials.")
    ] = None,
    coarse: Annotated[
        int | None,
        typer.Option(
            "--coarse",
            min=1,
            help="Score candidates on this many validation samples first; only those near the "
            "front get the whole split.",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Fine-tuning epochs.")] = 3,
    student: Annotated[
        str | None,
        typer.Option("--student", help="A student to distil into (default: half width)."),
    ] = None,
    student_kwargs: Annotated[
        str | None, typer.Option("--student-kwargs", help="Student factory arguments (JSON).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="The search's directory.")] = Path(
        "runs/optimize"
    ),
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the search in --out; nothing finished reruns."),
    ] = False,
    force: Force = False,
    save_recipe: SaveRecipe = None,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    preprocess: PreprocessFlag = None,
    task: Task = None,
    threads: Threads = None,
    trust: TrustCode = False,
) -> None:
    """Search whole pipelines (distill → prune → export) under constraints and a time budget;
    measure every candidate, keep the Pareto front, recommend one and save its recipe."""
    from modelpress.core.recipe import dump_recipe, load_recipe
    from modelpress.core.rundir import check_output
    from modelpress.search import space as sp
    from modelpress.search.optimize import Search, Settings, parse_budget

    check_output(out, "--out", folder=True)
    if save_recipe:
        check_output(save_recipe, "--save-recipe", folder=False, example="recipe.yaml")
    flags = {
        "max_accuracy_drop": max_accuracy_drop,
        "max_size_mb": max_size_mb,
        "max_latency_ms": max_latency_ms,
        "min_speedup": min_speedup,
    }
    if model.endswith((".yaml", ".yml")) and Path(model).is_file():
        recipe = load_recipe(Path(model))
        spec = recipe.optimize
        if spec is None:
            raise ModelpressError(
                f"{model}: no optimize: block; add one (budget, prefer, space) or pass a model"
            )
        targets = spec.budget.model_dump(exclude={"time", "max_trials", "coarse"})
        targets |= {k: v for k, v in flags.items() if v is not None}
        space = sp.check(spec.space, f"{model}: optimize.space")
        seconds = parse_budget(budget or spec.budget.time, "--budget" if budget else "budget.time")
        trials, prefer = max_trials or spec.budget.max_trials, list(spec.prefer)
        coarse = coarse or spec.budget.coarse
    else:
        if data is None:
            raise ModelpressError("--data: give the data source (e.g. --data builtin:digits)")
        names = tech.parse(formats, tech.FORMATS, "--formats")
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
                out=str(out),
            )
        )
        targets = flags
        space = sp.check(
            default_space(
                model,
                parse_kwargs(model_kwargs),
                names,
                epochs,
                student,
                parse_kwargs(student_kwargs, "--student-kwargs"),
            ),
            "default space",
        )
        seconds, trials, prefer = parse_budget(budget), max_trials, ["latency_ms", "size_mb"]
    if targets.get("max_accuracy_drop") is None:
        raise ModelpressError(
            "--max-accuracy-drop: give the accuracy a candidate may lose, in points (e.g. 1.0)"
        )
    if workers > 1 or ray_address:
        from modelpress.search.parallel import check_reachable, require_ray

        require_ray("--ray-address" if ray_address else f"--workers {workers}")
        if ray_address:
            check_reachable(ray_address)  # before any work
    settings = Settings(targets, space, seconds, trials, prefer, workers, ray_address, coarse)
    search = Search(
        recipe.model_copy(update={"optimize": None}),
        settings,
        out,
        resume=resume,
        force=force,
        observer=rich_observer(),
        on_trial=_table,
    )
    result = search.run()
    show(result, out)
    rec = result.get("recommendation")
    if save_recipe and rec and rec.get("recipe"):
        dump_recipe(load_recipe(Path(rec["recipe"])), save_recipe)
        console.print(Text(f"wrote {save_recipe}"))
    if not rec:
        raise typer.Exit(NOT_MET)


def register() -> None:
    app.command()(user_errors(optimize))
