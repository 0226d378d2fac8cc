"""What several techniques share, in one place (no technique imports a sibling):

- PT2E capture and calibration, and ``.pt2`` saving (quantize, qat, the TFLite INT8 export,
  prune's structured graph);
- the teacher: resolving ``teacher:`` and the distillation loss ``DistillLoss`` with its α
  schedule (distill, prune with a teacher, QAT+KD). The hard + soft math is the task's
  (``Task.kd_loss``, ``tasks/losses.py``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.errors import StepError, first_line
from modelpress.sources.data import Split
from modelpress.sources.models import eval_mode, first_tensor, load_exported
from modelpress.steps.quiet import quiet
from modelpress.steps.trained import TeacherFields
from modelpress.training import Callback

if TYPE_CHECKING:
    from modelpress.tasks.base import Task


# ---------------------------------------------------------------------- PT2E and .pt2
# Said of every torch INT8 (PT2E) artifact, whose eager latency is not an INT8 kernel's.
REFERENCE_INT8 = (
    "torch runs this INT8 graph as a reference (quantize/dequantize around float ops); "
    "export it to ONNX for INT8 kernels"
)


def export_program(module: nn.Module, ctx: StepContext, where: str) -> torch.export.ExportedProgram:
    """torch.export at batch 2 with a dynamic batch dimension (batch 1 would be specialised
    away); a model it cannot capture fails with the exporter's reason."""
    example = tuple(ctx.example_inputs(2))
    batch = torch.export.Dim("batch")
    try:
        with quiet():
            return torch.export.export(
                eval_mode(module), example, dynamic_shapes=tuple({0: batch} for _ in example)
            )
    except Exception as e:
        raise StepError(
            f"{where}: torch.export cannot capture the model: {first_line(e)}"
        ) from None


def capture(module: nn.Module, ctx: StepContext, where: str) -> torch.fx.GraphModule:
    return export_program(module, ctx, where).module()


def calibrate(prepared: nn.Module, split: Split, batch: int, ctx: StepContext, where: str) -> None:
    """Run the calibration samples through a PT2E-prepared graph (its observers record ranges)."""
    with torch.no_grad(), ctx.observer.progress(f"{where}: calibrate", len(split)) as advance:
        for arrays, _ in split.batches(batch):
            prepared(*[torch.from_numpy(a) for a in arrays])
            advance(len(arrays[0]))


def save_pt2(
    module: nn.Module, ctx: StepContext, where: str, name: str = "model.pt2"
) -> tuple[nn.Module, Path]:
    """Save as .pt2 in the step folder; return the reloaded module (what later steps use)."""
    path = ctx.work_dir() / name
    torch.export.save(export_program(module, ctx, where), str(path))
    return load_exported(path), path


# ---------------------------------------------------------------------- the teacher
def resolve_teacher(
    config: TeacherFields, artifact: Artifact, ctx: StepContext, where: str
) -> nn.Module:
    """The teacher a config names (``config.teacher`` is set), in eval mode and frozen."""
    if config.teacher is None or config.teacher == "input":
        teacher = copy.deepcopy(artifact.module)
    else:
        teacher, _ = ctx.load_model(
            config.teacher, config.teacher_kwargs, config.teacher_weights, f"{where} (teacher)"
        )
    if teacher is None:
        raise StepError(f"{where}: the teacher has no torch module to run")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return eval_mode(teacher)


def _check_widths(teacher: nn.Module, student: nn.Module, ctx: StepContext, where: str) -> None:
    example = ctx.example_inputs(2)
    with torch.no_grad():
        t_out = ctx.task.train_outputs(teacher(*example))
        was = student.training
        student.eval()
        s_out = ctx.task.train_outputs(student(*example))
        student.train(was)
    if isinstance(t_out, list) or isinstance(s_out, list):  # several outputs (a detector)
        t_shapes = [tuple(o.shape[1:]) for o in _listed(t_out)]
        s_shapes = [tuple(o.shape[1:]) for o in _listed(s_out)]
        if t_shapes != s_shapes:
            raise StepError(
                f"{where}: the teacher's outputs per sample are {t_shapes} but the student's "
                f"{s_shapes}; distillation compares them output by output (same classes, and "
                "for a detector the same strides at the same input size)"
            )
        return
    t, s = _width(t_out), _width(s_out)
    if t != s:
        raise StepError(
            f"{where}: the teacher outputs {t} values per sample but the student {s}; "
            "give the student the teacher's number of classes (student_kwargs: num_classes)"
        )


def _width(out: Any) -> int:

    tensor = first_tensor(out)
    return int(tensor[0].numel())


def _listed(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, list | tuple) else [out]


def _per_sample(x: Any) -> Any:
    """A class head's logits as (B, K); several outputs (a detector's) as they are."""
    return x.reshape(len(x), -1) if isinstance(x, torch.Tensor) else x


def teacher_loss(
    teacher: nn.Module,
    student: nn.Module,
    ctx: StepContext,
    where: str,
    *,
    temperature: float,
    hard_weight: float,
    soft_weight: float,
    standardize: bool = False,
) -> DistillLoss:
    """The KD loss of ``student`` against ``teacher`` (used by distill, prune, qat)."""
    _check_widths(teacher, student, ctx, where)
    return DistillLoss(
        teacher, ctx.task, temperature, hard_weight, soft_weight, standardize=standardize
    )


# ---------------------------------------------------------------------- distillation loss
def alpha_at(epoch: int, start: float, end: float, epochs: int) -> float:
    """Progressive α: linear from ``start`` (epoch 0) to ``end`` (epoch ``epochs − 1``), then
    held at ``end``."""
    if epochs <= 1:
        return end
    return start + (end - start) * min(epoch / (epochs - 1), 1.0)


class DistillLoss(nn.Module):
    """A training loss (``fit``'s ``loss_fn``): hard + soft (teacher) + feature terms.

    The teacher is held outside the module's parameters (never trained, never saved with the
    loss); the feature projections are parameters, so ``fit`` trains and checkpoints them."""

    def __init__(
        self,
        teacher: nn.Module,
        task: Task,
        temperature: float,
        hard_weight: float,
        soft_weight: float,
        features: nn.Module | None = None,  # a FeatureDistiller
        standardize: bool = False,  # z-score logits before the soft loss (multi-class only)
    ) -> None:
        super().__init__()
        self._teacher = [teacher]  # a list: not a submodule
        self.task = task
        self.temperature = temperature
        self.hard_weight, self.soft_weight = hard_weight, soft_weight
        self.features = features
        self.standardize = standardize
        self._cache: tuple[Any, torch.Tensor] | None = None

    def teacher_logits(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        key = (inputs[0].data_ptr(), tuple(inputs[0].shape))  # SAM's second pass: same batch
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                out = self.task.train_outputs(self._teacher[0](*inputs))
                out = [o.detach() for o in out] if isinstance(out, list) else out.detach()
                self._cache = (key, out)
        return self._cache[1]

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, inputs: list[torch.Tensor]
    ) -> torch.Tensor:
        teacher = self.teacher_logits(inputs)
        s, t = _per_sample(outputs), _per_sample(teacher)
        loss = self.task.kd_loss(
            s,
            t,
            labels,
            temperature=self.temperature,
            hard_weight=self.hard_weight,
            soft_weight=self.soft_weight,
            standardize=self.standardize,
        )
        if self.features is not None:
            loss = loss + self.features.loss()
        return loss


class AlphaSchedule(Callback):
    """Sets the loss's hard/soft weights to α / 1 − α at each epoch's start."""

    def __init__(self, loss: DistillLoss, start: float, end: float, epochs: int) -> None:
        self.loss, self.start, self.end, self.epochs = loss, start, end, epochs

    def on_epoch_start(self, epoch: int, model: nn.Module) -> dict[str, Any]:
        alpha = alpha_at(epoch, self.start, self.end, self.epochs)
        self.loss.hard_weight, self.loss.soft_weight = alpha, 1.0 - alpha
        return {"alpha": round(alpha, 6)}
