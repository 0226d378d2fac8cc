"""An artifact: one model in one format and precision, with its file and its lineage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn

from modelpress.core.inputs import InputSpec

Format = Literal["torch", "torchscript", "onnx", "tflite", "openvino"]
Precision = Literal["fp32", "fp16", "int8-dynamic", "int8"]


@dataclass
class Artifact:
    name: str  # unique in a run: "baseline", "onnx-fp32", ...
    format: Format
    input_specs: list[InputSpec]
    precision: Precision = "fp32"
    path: Path | None = None  # the file a user ships (None: a torch model held in memory)
    parents: list[str] = field(default_factory=list)  # names of the artifacts it was made from
    step: str | None = None  # name of the step that made it
    module: nn.Module | None = None  # the live module, for format "torch"
    extra_files: list[Path] = field(default_factory=list)  # e.g. the lite-interpreter .ptl
    companions: list[Path] = field(default_factory=list)  # part of the model: OpenVINO's .bin
    # files a later step may take from this one, by name (declared by that step's ``Takes``):
    # a QAT model's QAT-trained float weights, which a TFLite INT8 export converts
    handoffs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what a user should know (skips, choices)
    details: dict[str, Any] = field(default_factory=dict)  # step facts for the record
    # How to rebuild a torch model from code: {"model": source, "model_kwargs": {...}, and for
    # a structurally pruned one "structure": {...}}; None where only the file can rebuild it.
    rebuild: dict[str, Any] | None = None
    step_facts: dict[str, Any] = field(default_factory=dict)  # joins the step's record entry
    # A new model trained from its parent (a distilled student, a fine-tuned pruned model): its
    # outputs are meant to differ, so agreement with the parent is reported, not judged.
    retrained: bool = False
    # A new model with weights of its own (a distilled student), not its parent's changed: it
    # collapses only at chance, never for falling below its parent (a teacher) (tasks/base.py)
    new_model: bool = False
    # how the data's float NCHW batches become this artifact's inputs (``runtimes/adapt.py``):
    # {"kind": "uint8_nhwc", "mean": [...] | None, "std": [...] | None}; None: as they are
    input_transform: dict[str, Any] | None = None

    @property
    def parent(self) -> str | None:
        """The artifact this one was made from (the first, for a node of several inputs)."""
        return self.parents[0] if self.parents else None

    def child(
        self,
        format: Format,
        precision: Precision,
        path: Path | None,
        step: str,
        *,
        name: str | None = None,
        **fields: Any,
    ) -> Artifact:
        """An artifact made from this one by ``step``: it takes this one's inputs and lineage."""
        return Artifact(
            name=name or f"{format}-{precision}",
            format=format,
            input_specs=self.input_specs,
            precision=precision,
            path=path,
            parents=[self.name],
            step=step,
            **fields,
        )

    def files(self) -> list[Path]:
        return [p for p in [self.path, *self.companions, *self.extra_files] if p is not None]

    def model_files(self) -> list[Path]:
        """What the model is made of on disk (its size): the file and its companions."""
        return [p for p in [self.path, *self.companions] if p is not None]
