"""``modelpress train``: train a model on its data and save a checkpoint that reloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelpress.cli.common import (
    MODEL_FLAGS,
    AllowChance,
    Data,
    Force,
    Kwargs,
    Model,
    PreprocessFlag,
    Shape,
    Task,
    Threads,
    TrustCode,
    Weights,
    app,
    console,
    did_not_learn,
    model_recipe,
    rich_observer,
    user_errors,
)
from modelpress.errors import ModelpressError


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
    reset_norm: Annotated[
        bool,
        typer.Option(
            "--reset-norm",
            help="Start normalization layers whose weights begin near 0 at 1 (and a "
            "TensorFlow-style BatchNorm momentum m at 1 - m): transformers' EfficientNet needs it.",
        ),
    ] = False,
    weights: Weights = None,
    model_kwargs: Kwargs = None,
    input_shape: Shape = None,
    preprocess: PreprocessFlag = None,
    task: Task = None,
    threads: Threads = None,
    trust: TrustCode = False,
    force: Force = False,
    allow_chance: AllowChance = False,
) -> None:
    """Train a model and save its weights with what is needed to reload them.

    Exit 3 (did_not_learn) at chance level, the checkpoint written all the same."""
    from pydantic import ValidationError

    from modelpress.core.recipe import load_recipe
    from modelpress.core.rundir import check_output
    from modelpress.engine.train import train_and_save
    from modelpress.errors import OutputPathError
    from modelpress.training import TrainConfig, checkpoints_dir

    check_output(out, "--out", folder=False, example="model.pt")
    check_output(checkpoints_dir(out), "--out", folder=True)  # per-epoch checkpoints go here
    if out.exists() and not force:
        raise OutputPathError(
            f"--out {out}: already exists; pass --force to overwrite it, or choose another --out"
        )

    try:
        cfg = TrainConfig(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            scheduler=scheduler,
            early_stopping=early_stopping,
            seed=seed,
            reset_norm=reset_norm,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise ModelpressError(f"--{err['loc'][0]}: {err['msg']}") from None
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
        ),
        flags=MODEL_FLAGS,
    )
    result, metrics = train_and_save(recipe, cfg, out, rich_observer())
    key = result.metric
    console.print(
        f"best {key} {result.best_metric:.4f} at epoch {result.best_epoch}"
        f"{' (stopped early)' if result.stopped_early else ''}; validation {key} "
        f"{metrics.get(key, float('nan')):.4f}"
    )
    verdict = result.verdict()
    if verdict is None:
        console.print(f"wrote {out}  (reload: modelpress bench {out} --data {data})")
        return
    console.print(
        f"wrote {out}, a model that did not learn (kept to look into: modelpress bench {out} "
        f"--data {data}); {_what_to_try(lr, optimizer, result.norm_problems, reset_norm)}"
    )
    did_not_learn(verdict, allow_chance)


def register() -> None:
    app.command()(user_errors(train))


def _what_to_try(
    lr: float, optimizer: str, norm_problems: list[str] | None = None, reset: bool = False
) -> str:
    """A hint that fits the run: normalization layers that start near 0 (the model's own
    initialisation, training/norm_init.py) before anything else; else the learning rate used:
    a large one diverges as surely as a tiny one crawls (large: 0.1 for Adam and AdamW, 1 for
    SGD)."""
    if norm_problems and not reset:
        return norm_problems[0]
    large, usual = (1.0, "0.01") if optimizer == "sgd" else (0.1, "1e-3")
    if lr >= large:
        return f"--lr {lr:g} is large for {optimizer}: try about {usual}, or check the labels"
    return "try a higher --lr, more --epochs, or check the labels"
