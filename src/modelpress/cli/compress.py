"""``modelpress distill`` and ``modelpress prune``: shortcut commands that build a one-step
recipe (``--save-recipe`` writes it) and run it like ``modelpress run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelpress.cli.common import (
    AllowChance,
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
    did_not_learn,
    model_recipe,
    parse_kwargs,
    run_shortcut,
    step_flags,
    user_errors,
)

Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")]


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _set(step: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Only the options a user gave: the recipe keeps the step's own defaults for the rest."""
    return step | {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def distill(
    teacher: Annotated[str, typer.Option("--teacher", help="The teacher: any model source.")],
    student: Annotated[
        str, typer.Option("--student", help="The student: zoo:NAME, a factory or a checkpoint.")
    ],
    data: Data,
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/distill"),
    epochs: Epochs = 10,
    teacher_weights: Annotated[
        Path | None, typer.Option("--teacher-weights", help="State dict for the teacher.")
    ] = None,
    teacher_kwargs: Annotated[
        str | None, typer.Option("--teacher-kwargs", help="Teacher factory arguments (JSON).")
    ] = None,
    student_kwargs: Annotated[
        str | None,
        typer.Option("--student-kwargs", help="Student factory arguments, e.g. width_mult."),
    ] = None,
    student_weights: Annotated[
        Path | None, typer.Option("--student-weights", help="Initial weights for the student.")
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0.0)] = None,
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="Weight of the hard-label loss (0–1).")
    ] = None,
    alpha_start: Annotated[float | None, typer.Option("--alpha-start")] = None,
    alpha_end: Annotated[float | None, typer.Option("--alpha-end")] = None,
    progressive_epochs: Annotated[int | None, typer.Option("--progressive-epochs", min=1)] = None,
    feature_layers: Annotated[
        str | None,
        typer.Option("--feature-layers", help="teacher_layer:student_layer,... (MSE, γ weight)."),
    ] = None,
    feature_weight: Annotated[float | None, typer.Option("--feature-weight", min=0.0)] = None,
    pretrain_epochs: Annotated[
        int | None, typer.Option("--pretrain-epochs", min=0, help="Two-stage: hard labels first.")
    ] = None,
    sam: Annotated[bool, typer.Option("--sam", help="Sharpness-aware minimization.")] = False,
    standardize_logits: Annotated[
        bool,
        typer.Option(
            "--standardize-logits/--raw-logits",
            help="Z-score logits before the soft loss (match class relations, not scale).",
        ),
    ] = True,
    compare_scratch: Annotated[
        bool,
        typer.Option("--compare-scratch", help="Also train the student without the teacher."),
    ] = False,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    input_shape: Shape = None,
    preprocess: PreprocessFlag = None,
    task: Task = None,
    threads: Threads = None,
    force: Force = False,
    save_recipe: SaveRecipe = None,
    trust: TrustCode = False,
    allow_chance: AllowChance = False,
) -> None:
    """Distil a small student from a teacher (Hinton KD, progressive α, two-stage, SAM).

    Exit 3 (did_not_learn) when the student stays at chance level (kept, recorded collapsed)."""
    step = _set(
        {"type": "distill", "student": student, "epochs": epochs},
        student_kwargs=parse_kwargs(student_kwargs, "--student-kwargs"),
        student_weights=str(student_weights) if student_weights else None,
        temperature=temperature,
        alpha=alpha,
        alpha_start=alpha_start,
        alpha_end=alpha_end,
        progressive_epochs=progressive_epochs,
        feature_layers=_names(feature_layers),
        feature_weight=feature_weight,
        pretrain_epochs=pretrain_epochs,
        sam=sam or None,
        standardize_logits=None if standardize_logits else False,
        compare_scratch=compare_scratch or None,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
    )
    recipe = model_recipe(
        teacher,
        data,
        teacher_weights,
        teacher_kwargs,
        input_shape,
        task,
        threads,
        trust_checkpoint_code=trust,
        preprocess=preprocess,
        steps=[step],
        out=str(out),
    )
    teacher_flags = {"model": "--teacher", "weights": "--teacher-weights"}
    flags = step_flags(*step) | teacher_flags | {"model_kwargs": "--teacher-kwargs"}
    record = run_shortcut(recipe, out, force, save_recipe, flags)
    artifact = next((s.get("artifact") or {} for s in record.get("steps") or []), {})
    verdict = next(
        (str(n) for n in artifact.get("notes") or [] if str(n).startswith("did_not_learn")), None
    )
    if verdict:
        path, status = out / str(artifact.get("path")), artifact.get("status")
        did_not_learn(f"{verdict}; the student is kept ({path}), status {status}", allow_chance)


def prune(
    model: Model,
    data: Data,
    method: Annotated[
        str, typer.Option("--method", help="l1-unstructured | gradual | structured")
    ] = "structured",
    ratio: Annotated[
        float,
        typer.Option(
            "--ratio", help="structured: share of channels removed; else: share of weights zeroed."
        ),
    ] = 0.5,
    out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/prune"),
    finetune_epochs: Annotated[int | None, typer.Option("--finetune-epochs", min=0)] = None,
    distill_from: Annotated[
        str | None,
        typer.Option(
            "--distill-from",
            help="Fine-tune with a teacher: 'input' (the unpruned model) or a model source.",
        ),
    ] = None,
    importance: Annotated[
        str | None, typer.Option("--importance", help="magnitude | bn-scale | taylor")
    ] = None,
    round_to: Annotated[int | None, typer.Option("--round-to", min=1)] = None,
    keep: Annotated[
        str | None, typer.Option("--keep", help="Module names never pruned, comma-separated.")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="gradual: polynomial | exponential")
    ] = None,
    sparsity_init: Annotated[float | None, typer.Option("--sparsity-init")] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0)] = None,
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
    """Prune (unstructured, gradual or structured channels), fine-tune, measure the result."""
    step = _set(
        {"type": "prune", "method": method, "ratio": ratio},
        finetune_epochs=finetune_epochs,
        teacher=distill_from,
        importance=importance,
        round_to=round_to,
        keep=_names(keep),
        schedule=schedule,
        sparsity_init=sparsity_init,
        lr=lr,
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
        steps=[step],
        out=str(out),
    )
    run_shortcut(recipe, out, force, save_recipe, step_flags(*step, teacher="--distill-from"))


def register() -> None:
    app.command()(user_errors(distill))
    app.command()(user_errors(prune))
