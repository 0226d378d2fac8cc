"""``distill``: train a small student from a teacher (Hinton KD, progressive α, two-stage,
feature distillation, SAM).

The teacher is the step's input model unless ``teacher`` names another; the student is any model
source (a zoo entry with its width multiplier, a user factory, a checkpoint). The result is the
student as a self-describing checkpoint (``model.pt``: weights + how to rebuild it), so it
reloads without pickled code and feeds the next steps (prune, quantize, export).
``compare_scratch`` also trains the same student on hard labels alone (same epochs, seed and
data) and records it under the step's ``scratch``: what the teacher added, measured.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.registry import register_step
from modelpress.errors import StepError
from modelpress.sources.models import eval_mode
from modelpress.steps.distill.features import FeatureDistiller, find_module, parse_pairs
from modelpress.steps.shared import AlphaSchedule, resolve_teacher, teacher_loss
from modelpress.steps.trained import TeacherFields, named, train_in_step
from modelpress.training import checkpoint_metadata, evaluate_module, save_checkpoint

__all__ = ["DistillConfig", "TeacherFields", "resolve_teacher", "teacher_loss"]


class DistillConfig(TeacherFields):
    type: Literal["distill"] = "distill"
    student: str
    student_kwargs: dict[str, Any] = Field(default_factory=dict)
    student_weights: str | None = None
    teacher: str = "input"
    alpha: float = Field(0.5, ge=0, le=1)  # weight of the hard-label loss; 1 − α on the teacher
    alpha_start: float | None = Field(None, ge=0, le=1)  # progressive α: start → end
    alpha_end: float | None = Field(None, ge=0, le=1)
    progressive_epochs: int | None = Field(None, ge=1)  # default: all distillation epochs
    pretrain_epochs: int = Field(0, ge=0)  # two-stage: hard labels first, distil from the best
    feature_layers: list[str] = Field(default_factory=list)  # "teacher_layer:student_layer"
    feature_weight: float = Field(1.0, ge=0)  # γ
    # z-score both logit vectors before the soft loss (Sun et al. 2024): the student matches
    # the teacher's class relations, not its logit scale (see losses.py for why it is the default)
    standardize_logits: bool = True
    epochs: int = Field(10, ge=1)
    lr: float = Field(3e-3, gt=0)
    compare_scratch: bool = False

    @field_validator("feature_layers")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        try:
            parse_pairs(value, "feature_layers")
        except StepError as e:  # pydantic names the field; the message names the entry
            raise ValueError(str(e).removeprefix("feature_layers: feature_layers ")) from None
        return value

    def check_before_run(self, ctx: StepContext, parent: Artifact | None, where: str) -> None:
        """The student built as the step builds it (its source, arguments and weights; one
        forward, its outputs checked against the data), the teacher too, and every
        feature_layers name looked up in both models: all before the baseline is measured."""
        with named(where, "student"):
            student, _ = ctx.load_model(
                self.student,
                self.student_kwargs,
                self.student_weights,
                f"{where} (student)",
                seed=self.seed,
            )
        teacher = self.check_teacher(ctx, parent, where)
        for t_name, s_name in parse_pairs(self.feature_layers, where):
            find_module(student, s_name, "student", f"{where}: feature_layers")
            if teacher is not None:  # the input model: known only when it is the baseline
                find_module(teacher, t_name, "teacher", f"{where}: feature_layers")

    @model_validator(mode="after")
    def _progressive_pair(self) -> DistillConfig:
        if (self.alpha_start is None) != (self.alpha_end is None):
            raise ValueError("alpha_start and alpha_end go together (progressive α)")
        if self.progressive_epochs is not None and self.alpha_start is None:
            raise ValueError("progressive_epochs needs alpha_start and alpha_end")
        return self


def _metrics(module: nn.Module, ctx: StepContext) -> dict[str, Any]:
    metrics = evaluate_module(module, ctx.data, ctx.task, ctx.threads)
    return {k: v for k, v in metrics.items() if isinstance(v, float | int)}


def teacher_cost(
    config: DistillConfig, distilled: dict[str, Any], scratch: dict[str, Any], ctx: StepContext
) -> dict[str, Any] | None:
    """When the same student trained without the teacher scores better (by more than one
    validation sample), what it cost and what to change; else None."""
    key = ctx.task.primary
    value, alone = distilled.get(key), scratch.get(key)
    if value is None or alone is None:
        return None
    one_sample = 1.0 / max(len(ctx.data.validation), 1)
    cost = ctx.task.worse_by(value, alone)  # how much worse distilled is than scratch
    if cost <= one_sample:
        return None
    remedies = []
    if config.alpha_start is None and config.alpha < 0.7:
        remedies.append(f"raise alpha (now {config.alpha}) to put more weight on the labels")
    if config.temperature > 2:
        remedies.append(f"lower the temperature (now {config.temperature}) to 2")
    if not config.pretrain_epochs:
        remedies.append("add pretrain_epochs (a hard-label warm-up)")
    remedies.append("train for more epochs, or ship the student trained without the teacher")
    cost_pt = round(100 * cost, 2)
    return {
        "metric": key,
        "cost_pt": cost_pt,
        "message": (
            f"the teacher cost {cost_pt:.2f} pt of {key}: the same student from scratch scored "
            f"{alone:.4f}, distilled {value:.4f}; " + "; ".join(remedies)
        ),
    }


@register_step(DistillConfig)
def _distill(artifact: Artifact, config: DistillConfig, ctx: StepContext) -> Artifact:
    where = config.display_name
    teacher = resolve_teacher(config, artifact, ctx, where)
    student, spec = ctx.load_model(
        config.student,
        config.student_kwargs,
        config.student_weights,
        f"{where} (student)",
        seed=config.seed,
    )
    initial = copy.deepcopy(student.state_dict())  # the scratch twin starts from the same weights
    details: dict[str, Any] = {
        "teacher": config.teacher if config.teacher != "input" else artifact.name,
        "student": spec.architecture,
        "student_kwargs": spec.kwargs,
        "temperature": config.temperature,
        "standardize_logits": config.standardize_logits,
    }
    if config.pretrain_epochs:  # two-stage: hard labels first; fit keeps the best epoch
        pre = train_in_step(student, config, ctx, epochs=config.pretrain_epochs, folder="pretrain")
        details["pretrain"] = {k: v for k, v in pre.summary().items() if k != "history"}
    loss = teacher_loss(
        teacher,
        student,
        ctx,
        where,
        temperature=config.temperature,
        hard_weight=config.alpha,
        soft_weight=1 - config.alpha,
        standardize=config.standardize_logits,
    )
    features = None
    if config.feature_layers:
        pairs = parse_pairs(config.feature_layers, where)
        features = FeatureDistiller(
            teacher, student, pairs, ctx.example_inputs(2), config.feature_weight, where
        )
        loss.features = features
        details["feature_layers"] = [
            {"teacher": t, "student": s, "student_shape": list(ss), "teacher_shape": list(ts)}
            for (t, s), (ss, ts) in zip(pairs, features.shapes, strict=True)
        ]
    callbacks = []
    if config.alpha_start is not None and config.alpha_end is not None:
        epochs = config.progressive_epochs or config.epochs
        callbacks.append(AlphaSchedule(loss, config.alpha_start, config.alpha_end, epochs))
        details["alpha"] = {"start": config.alpha_start, "end": config.alpha_end, "epochs": epochs}
    else:
        details["alpha"] = config.alpha
    try:
        result = train_in_step(
            student,
            config,
            ctx,
            epochs=config.epochs,
            folder="distill",
            loss=loss,
            callbacks=callbacks,
        )
    finally:
        if features is not None:
            features.remove()
    details |= {**result.summary(), "sam": config.sam}
    step_facts: dict[str, Any] = {}
    notes: list[str] = []
    verdict = result.verdict()
    if verdict:  # the student is still at chance: `modelpress distill` exits 3 on this note
        notes.append(verdict)
    if config.compare_scratch:
        scratch = copy.deepcopy(student)
        scratch.load_state_dict(initial)
        total = config.pretrain_epochs + config.epochs
        ctx.observer.event("step", f"{where}: the same student without a teacher ({total} epochs)")
        run = train_in_step(scratch, config, ctx, epochs=total, folder="scratch")
        step_facts["scratch"] = {
            **run.summary(),
            "seconds": round(sum(h["seconds"] for h in run.history), 3),  # within the step
            "metrics": _metrics(scratch, ctx),
        }
        cost = teacher_cost(config, _metrics(student, ctx), step_facts["scratch"]["metrics"], ctx)
        if cost:
            step_facts["scratch"]["teacher_cost"] = cost
            notes.append(cost["message"])
            ctx.observer.event("warning", f"{where}: {cost['message']}")
    rebuild = {"model": spec.architecture, "model_kwargs": spec.kwargs}
    path = ctx.work_dir() / "model.pt"
    save_checkpoint(path, student, checkpoint_metadata(ctx, rebuild, distilled=details))
    return artifact.child(
        "torch",
        "fp32",
        path,
        where,
        name="student",
        module=eval_mode(student),
        details=details,
        notes=notes,
        rebuild=rebuild,
        step_facts=step_facts,
        retrained=True,
        new_model=True,
    )
