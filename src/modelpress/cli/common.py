"""What every command shares: the app, consoles, option types, recipe building, error handling."""

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
from rich.text import Text

from modelpress.errors import ModelpressError, first_line
from modelpress.tasks import task_names

app = typer.Typer(
    name="modelpress",
    help="Turn a PyTorch model and its data into small, fast, verified artifacts, "
    "every number measured on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console(stderr: bool) -> Console:
    """Where every line the CLI prints enters rich. Strings print as written: no markup (an
    error's `[tflite]` or a path's `a[b]` would be read as a style and dropped), no `:emoji:`
    codes, no highlighting. Style a part with ``Text.assemble((part, style), ...)``.
    Logs and CI are not terminals: tables get room instead of rich's 80-column default."""
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(
        stderr=stderr, markup=False, emoji=False, highlight=False, width=None if tty else 200
    )


console = _console(stderr=False)
err_console = _console(stderr=True)
state = {"debug": False}

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
    typer.Option(
        "--data",
        help="builtin:digits, builtin:breast_cancer, builtin:digits-detect, "
        "builtin:digits-manipulated, folder:PATH, "
        "npz:PATH, yolo:DATA.yaml or coco:ANNOTATIONS.json[:IMAGES].",
    ),
]
Weights = Annotated[
    Path | None, typer.Option("--weights", help="State dict (.pt/.safetensors) for the model.")
]
Kwargs = Annotated[
    str | None,
    typer.Option("--model-kwargs", help="Factory arguments as JSON, e.g. '{\"width_mult\": 0.5}'."),
]
PreprocessFlag = Annotated[
    str | None,
    typer.Option(
        "--preprocess",
        help="Images as the model was trained on them: resize=256,crop=true,channels=rgb,"
        "mean=0.485/0.456/0.406,std=0.229/0.224/0.225 (data.preprocess in a recipe).",
    ),
]


def parse_preprocess(text: str) -> dict[str, Any]:
    """``resize=256,mean=0.485/0.456/0.406,...`` as ``data.preprocess`` (lists split on /);
    a malformed item is one line naming the flag."""
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ModelpressError(
                f"--preprocess: '{item}' is not KEY=VALUE (resize=256,mean=0.5/0.5/0.5,...)"
            )
        key, value = key.strip(), value.strip()
        out[key] = value.split("/") if key in ("mean", "std") else value
    return out


Shape = Annotated[
    str | None,
    typer.Option("--input-shape", help="N,C,H,W, or name:dims[:dtype];... for several inputs."),
]
Task = Annotated[
    str | None,
    typer.Option("--task", help=f"{' | '.join(task_names())} (default: from the data)."),
]
Threads = Annotated[
    int | None, typer.Option("--threads", min=1, help="Inference threads (default: all cores).")
]
SaveRecipe = Annotated[
    Path | None, typer.Option("--save-recipe", help="Write the equivalent recipe here.")
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Start over where --out already holds a run or a checkpoint."),
]
TrustCode = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint-code",
        help="Let a .pt checkpoint build its model with a module:factory or file.py:factory it "
        "names that you did not name (runs that code: only for files you trust).",
    ),
]

AllowChance = Annotated[
    bool,
    typer.Option(
        "--allow-chance",
        help="Exit 0 when the trained model stays at chance level (did_not_learn: its best "
        "validation metric vs chance); without it that is exit 3.",
    ),
]
DID_NOT_LEARN = 3  # exit code of train and distill when the model stayed at chance level


def did_not_learn(verdict: str, allow: bool) -> None:
    """Say ``verdict`` ("did_not_learn: …", with the figures) on stderr; exit DID_NOT_LEARN
    unless the user passed --allow-chance."""
    said = f"warning: {verdict} (--allow-chance: exit 0)" if allow else verdict
    err_console.print(Text(said, style="red"), soft_wrap=True)
    if not allow:
        raise typer.Exit(DID_NOT_LEARN)


def parse_kwargs(text: str | None, option: str = "--model-kwargs") -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelpressError(
            f"{option}: not valid JSON ({e.msg}); e.g. '{{\"width_mult\": 0.5}}'"
        ) from None
    if not isinstance(value, dict):
        raise ModelpressError(f"{option}: must be a JSON object of argument names to values")
    return value


# Recipe fields a shortcut command sets from its flags: validation errors name the flag
# (`--formats: ...`), not the recipe path it went to (`steps.2.format: ...`). `*` is any index.
MODEL_FLAGS = {
    "model": "MODEL",
    "weights": "--weights",
    "model_kwargs": "--model-kwargs",
    "data": "--data",
    "data.source": "--data",
    **{
        f"data.preprocess.{k}": "--preprocess"
        for k in ("resize", "crop", "channels", "mean", "std")
    },
    "data.preprocess": "--preprocess",
    "input_shape": "--input-shape",
    "task": "--task",
    "evaluate.threads": "--threads",
    "out": "--out",
}


def step_flags(*fields: str, **renamed: str) -> dict[str, str]:
    """``steps.*.FIELD`` → ``--FIELD`` (underscores as dashes), or the flag ``renamed`` gives."""
    flags = {f"steps.*.{f}": "--" + f.replace("_", "-") for f in fields}
    return flags | {f"steps.*.{f}": flag for f, flag in renamed.items()}


def model_recipe(
    model: str,
    data: str,
    weights: Path | None,
    model_kwargs: str | None,
    input_shape: str | None,
    task: str | None,
    threads: int | None,
    trust_checkpoint_code: bool = False,
    preprocess: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "model": model,
        "data": data,
        "model_kwargs": parse_kwargs(model_kwargs),
    }
    if preprocess:
        recipe["data"] = {"source": data, "preprocess": parse_preprocess(preprocess)}
    if trust_checkpoint_code:
        recipe["trust_checkpoint_code"] = True
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


def rich_observer() -> Any:
    from modelpress.cli.observer import RichObserver

    return RichObserver(console)


def show_run(record: dict[str, Any], out: Path) -> None:
    from modelpress.report import terminal

    compared = terminal.techniques_table(record)
    if compared is not None:
        console.print(compared)
    console.print(terminal.progression_table(record))
    for table in (
        *terminal.task_tables(record),
        terminal.training_table(record),
        terminal.fallback_table(record),
        terminal.coverage_table(record),
        terminal.targets_table(record),
        terminal.head_to_head_table(record),
        terminal.versus_fp32_table(record),
    ):
        if table is not None:
            console.print(table)
    rec = record.get("recommendation") or {}
    if rec:
        mark = ("✔", "green") if rec.get("met") else ("✘", "red")
        name, why = str(rec.get("name") or "none"), str(rec.get("why"))
        console.print(Text.assemble(mark, " recommendation: ", (name, "bold"), f" — {why}"))
    console.print(Text(f"run directory: {out}  (report.md, report.html, record.json)"))


def finish(record: dict[str, Any], out: Path) -> None:
    """Print the run's tables; a failed step makes the exit code 1 (the run itself finished)."""
    show_run(record, out)
    if any(s.get("status") == "failed" for s in record.get("steps", [])):
        raise typer.Exit(1)


def run_shortcut(
    recipe_dict: dict[str, Any],
    out: Path,
    force: bool,
    save_recipe: Path | None,
    flags: dict[str, str] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """A shortcut command's recipe: validated (errors name ``flags``, the recipe fields' flags),
    optionally written out (replayable), then run; its record. Output paths are checked
    first."""
    from modelpress.core.recipe import dump_recipe, load_recipe
    from modelpress.core.rundir import check_output
    from modelpress.engine import pipeline

    check_output(out, "--out", folder=True)
    if save_recipe:
        check_output(save_recipe, "--save-recipe", folder=False, example="recipe.yaml")
    recipe = load_recipe(recipe_dict, flags={**MODEL_FLAGS, **(flags or {})})
    if save_recipe:
        dump_recipe(recipe, save_recipe)
        console.print(Text(f"wrote {save_recipe}"))
    record = pipeline.run(recipe, out=out, force=force, resume=resume, observer=rich_observer())
    finish(record, out)
    return record


def user_errors(fn: Callable[..., None]) -> Callable[..., None]:
    """User errors print one line and exit 2 (traceback only with --debug); anything else is a
    bug in modelpress and says so."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except ModelpressError as e:
            if state["debug"]:
                traceback.print_exc()
            err_console.print(Text.assemble(("error:", "red"), f" {e}"), soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; finished steps are kept (--resume continues)")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:
            if state["debug"]:
                raise
            err_console.print(
                Text.assemble(
                    ("internal error:", "red"),
                    f" {first_line(e)} (a bug in modelpress: rerun with --debug for the "
                    "traceback and report it)",
                ),
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper
