"""The techniques ``modelpress compare`` applies, each alone to the baseline, as recipe steps.

Each technique is a branch of the step graph starting from the baseline (``from: baseline``);
an exported technique also gets its format's FP32 export as a reference (the INT8 artifact is
timed against it, and an ONNX quantization starts from it). The recipe's ``compare:`` lists the
nodes the "Techniques compared" table shows, in order.
"""

from __future__ import annotations

import difflib
from typing import Any

from modelpress.core.formats import METHOD_PRECISION, exports, not_exported
from modelpress.errors import ModelpressError

TECHNIQUES = (
    "dynamic",
    "static",
    "fp16",
    "torchscript",
    "l1-unstructured",
    "structured",
    "distill",
    "qat",
)
DEFAULT = TECHNIQUES
FORMATS = ("onnx", "tflite", "openvino")


def parse(text: str, known: tuple[str, ...], flag: str) -> list[str]:
    """Comma-separated names, each known (close names suggested), none twice."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ModelpressError(f"{flag}: name at least one of {', '.join(known)}")
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ModelpressError(f"{flag}: unknown '{name}'{hint}; choose from {', '.join(known)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelpressError(f"{flag}: {', '.join(twice)} given twice; name each once")
    return names


def left_out(techniques: list[str], formats: list[str]) -> list[str]:
    """One line per technique a format does not export (``compare`` leaves that pair out)."""
    return [
        f"{tech} left out for {fmt}: {not_exported(fmt, METHOD_PRECISION[tech])}"
        for tech in techniques
        if tech in METHOD_PRECISION
        for fmt in formats
        if not exports(fmt, METHOD_PRECISION[tech])
    ]


def steps(
    techniques: list[str],
    formats: list[str],
    *,
    epochs: int,
    student: str | None,
    student_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(recipe steps, the node ids the table compares) for ``techniques`` on ``formats``."""
    out: list[dict[str, Any]] = []
    compared: list[str] = []
    references: set[str] = set()

    def reference(fmt: str) -> str:
        """The format's FP32 export (once), which its quantized exports are timed against."""
        node = f"{fmt}-fp32"
        if node not in references:
            references.add(node)
            out.append({"type": "export", "id": node, "from": "baseline", "format": fmt})
            compared.append(node)
        return node

    for tech in techniques:
        if tech in METHOD_PRECISION:
            for fmt in formats:
                if not exports(fmt, METHOD_PRECISION[tech]):
                    continue  # compare says so (left_out)
                ref = reference(fmt)
                node = f"{tech}-{fmt}"
                start = ref if fmt == "onnx" else "baseline"  # ORT quantizes the FP32 ONNX
                out.append(
                    {
                        "type": "export",
                        "id": node,
                        "from": start,
                        "format": fmt,
                        "precision": METHOD_PRECISION[tech],
                    }
                )
                compared.append(node)
        elif tech == "torchscript":
            out.append({"type": "torchscript", "id": "torchscript", "from": "baseline"})
            compared.append("torchscript")
        elif tech in ("l1-unstructured", "structured"):
            out.append(
                {
                    "type": "prune",
                    "id": tech,
                    "from": "baseline",
                    "method": tech,
                    "ratio": 0.5 if tech == "l1-unstructured" else 0.3,
                    "finetune_epochs": epochs,
                }
            )
            compared.append(tech)
        elif tech == "distill":
            if not student:
                raise ModelpressError(
                    "--techniques distill: needs --student (a smaller model: zoo:NAME, a "
                    "factory or a checkpoint); a zoo model with width_mult gets half its width"
                )
            step = {"type": "distill", "id": "distill", "from": "baseline", "student": student}
            out.append(
                step
                | {"epochs": epochs}
                | ({"student_kwargs": student_kwargs} if student_kwargs else {})
            )
            compared.append("distill")
        elif tech == "qat":
            out.append({"type": "qat", "id": "qat", "from": "baseline", "epochs": epochs})
            compared.append("qat")
            for fmt in formats:
                if fmt == "openvino":
                    continue  # NNCF quantizes an FP32 model; a QAT graph has no OpenVINO path
                node = f"qat-{fmt}"
                out.append(
                    {
                        "type": "export",
                        "id": node,
                        "from": "qat",
                        "format": fmt,
                        "precision": "int8",
                    }
                )
                compared.append(node)
    return out, compared
