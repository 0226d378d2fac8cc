"""``qat``: quantization-aware training with torchao PT2E (``prepare_qat_pt2e``).

The model is captured, fake-quantized with the X86 Inductor quantizer's QAT config, fine-tuned
on the training split with the shared training loop (best validation epoch kept), then converted
to INT8. The result exports to ONNX as QDQ like the ``quantize`` step's. The fine-tuned float
weights are saved beside it: litert-torch cannot prepare QAT (upstream litert-torch #355, #801),
so a TFLite INT8 export of a QAT model converts these QAT-trained weights with litert-torch's
PTQ quantizer calibrated on the calibration split, and its record says so.
With ``teacher`` set (QAT + KD) the fake-quantized student learns from an FP32 teacher:
``α_hard · hard + α_soft · T² · KL`` (defaults 0.3, 0.7, T 4, lr 1e-5). ``loss`` names another
custom loss from ``LOSSES``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.registry import Takes, register_step
from modelpress.errors import StepError
from modelpress.sources.models import eval_mode
from modelpress.steps.float_tail import describe, with_float_tail
from modelpress.steps.quiet import quiet
from modelpress.steps.shared import REFERENCE_INT8, capture, resolve_teacher, save_pt2, teacher_loss
from modelpress.steps.trained import TeacherFields, train_in_step
from modelpress.training import LossFn

# A custom loss for QAT, by name: each maps (ctx, config) to a LossFn (a teacher is set apart,
# in the config's ``teacher`` fields).
LOSSES: dict[str, Callable[[StepContext, Any], LossFn]] = {}


class QATConfig(TeacherFields):
    type: Literal["qat"] = "qat"
    # the task's decode tail (detection) trains and runs in float; false quantizes it too
    float_tail: bool = True
    epochs: int = Field(3, ge=1)
    lr: float | None = Field(None, gt=0)  # type: ignore[assignment]  # 1e-4; 1e-5 with a teacher
    alpha_hard: float = Field(0.3, ge=0)
    alpha_soft: float = Field(0.7, ge=0)
    loss: str | None = None  # a name in LOSSES; None: the task's own loss

    def makes(self) -> Takes:
        return Takes("torch", ("int8",), companion="qat_float_model")


class _Trainable(nn.Module):
    """Wraps an exported (fake-quantized) graph so the training loop's train()/eval() switch
    it the way torchao says (``GraphModule.train()`` itself raises)."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.graph(*inputs)

    def train(self, mode: bool = True) -> _Trainable:
        from torchao.quantization.pt2e import (
            move_exported_model_to_eval,
            move_exported_model_to_train,
        )

        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self.graph)
        self.training = mode
        return self


def _float_weights(original: nn.Module, trained: nn.Module, where: str) -> nn.Module:
    """The original architecture with the QAT-trained float weights (matched by name)."""
    model = copy.deepcopy(original)
    state, own = trained.state_dict(), model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise StepError(
            f"{where}: QAT weights do not map back to the model ({len(missing)} "
            f"missing, e.g. {missing[0]})"
        )
    model.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
    return eval_mode(model)


@register_step(QATConfig)
def _qat(artifact: Artifact, config: QATConfig, ctx: StepContext) -> Artifact:
    where = config.display_name
    with quiet():
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    original = eval_mode(copy.deepcopy(artifact.module))
    quantizer = xiq.X86InductorQuantizer().set_global(
        xiq.get_default_x86_inductor_quantization_config(is_qat=True)
    )
    tail: list[str] = []
    if ctx.task.float_tail and config.float_tail:
        quantizer = with_float_tail(quantizer, tail)
    prepared = prepare_qat_pt2e(capture(original, ctx, where), quantizer)
    model = _Trainable(prepared)
    if config.loss is not None and config.loss not in LOSSES:
        raise StepError(
            f"{where}: unknown loss '{config.loss}'; known: {', '.join(LOSSES) or 'none'}"
        )
    if config.loss and config.teacher:
        raise StepError(f"{where}: set either loss or teacher, not both")
    loss_fn = LOSSES[config.loss](ctx, config) if config.loss else None
    details: dict[str, Any] = {}
    if config.teacher:
        loss_fn = teacher_loss(
            resolve_teacher(config, artifact, ctx, where),
            model,
            ctx,
            where,
            temperature=config.temperature,
            hard_weight=config.alpha_hard,
            soft_weight=config.alpha_soft,
        )
        details["teacher"] = {
            "model": artifact.name if config.teacher == "input" else config.teacher,
            "temperature": config.temperature,
            "alpha_hard": config.alpha_hard,
            "alpha_soft": config.alpha_soft,
        }
    lr = config.lr or (1e-5 if config.teacher else 1e-4)
    result = train_in_step(
        model, config, ctx, epochs=config.epochs, folder="checkpoints", loss=loss_fn, lr=lr
    )
    model.train(False)
    float_model = _float_weights(original, prepared, where)
    _, float_path = save_pt2(float_model, ctx, where, "qat-float.pt2")
    with quiet():
        quantized = convert_pt2e(prepared)
    loaded, path = save_pt2(quantized, ctx, where)
    return artifact.child(
        "torch",
        "int8",
        path,
        where,
        name="torch-int8-qat",
        module=loaded,
        notes=[REFERENCE_INT8],
        details={
            "method": "torchao prepare_qat_pt2e + X86InductorQuantizer (is_qat)",
            **details,
            **({"float_tail": describe(tail, ctx.task.float_tail)} if tail else {}),
            "lr": lr,
            **result.summary(),
        },
        handoffs={"qat_float_model": float_path},  # for a TFLite INT8 export (Takes.companion)
    )
