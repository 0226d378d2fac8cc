"""The one table of what each deployable format is exported at: formats × precisions.

The export step's validation, its documentation, ``modelpress quantize`` / ``compare`` and the
default ``optimize`` search space all read it, so a format that gains a precision gains it
everywhere at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # core.artifact imports torch; this table is read by light CLI code too
    from modelpress.core.artifact import Precision

# format → the precisions its export writes (the first is the reference the others are timed
# against). onnx: torch.onnx + ORT quantization; tflite: litert-torch; openvino: NNCF has no
# dynamic quantization (ORT does: export onnx int8-dynamic); torchscript: fp32 only (quantize
# for onnx instead).
EXPORT_PRECISIONS: dict[str, tuple[Precision, ...]] = {
    "onnx": ("fp32", "fp16", "int8-dynamic", "int8"),
    "tflite": ("fp32", "fp16", "int8-dynamic", "int8"),
    "openvino": ("fp32", "fp16", "int8"),
    "torchscript": ("fp32",),
}
EXPORT_FORMATS = tuple(EXPORT_PRECISIONS)

# format → the input types ``io:`` may ask of its export: uint8 takes a camera's uint8 NHWC frame
# (converted in the graph); float / int8 insist on the TFLite int8 model's I/O type
EXPORT_IO: dict[str, tuple[str, ...]] = {
    "onnx": ("uint8",),
    "tflite": ("float", "int8", "uint8"),
    "openvino": (),
    "torchscript": (),
}

# ``quantize`` methods (the quantize step, ``modelpress quantize --method``, ``compare``'s
# techniques) and the precision each makes
METHOD_PRECISION: dict[str, Precision] = {
    "static": "int8",
    "dynamic": "int8-dynamic",
    "fp16": "fp16",
}


def exports(fmt: str, precision: str) -> bool:
    """Whether ``fmt`` is exported at ``precision``."""
    return precision in EXPORT_PRECISIONS.get(fmt, ())


def not_exported(fmt: str, precision: str) -> str | None:
    """Why ``fmt`` is not exported at ``precision`` (one line naming what it does export and
    where the precision is found), or None when it is."""
    if exports(fmt, precision):
        return None
    has = EXPORT_PRECISIONS.get(fmt, ())
    listed = ", ".join(has[:-1]) + f" or {has[-1]}" if len(has) > 1 else "".join(has)
    elsewhere = [f for f in EXPORT_FORMATS if exports(f, precision)]
    hint = f"; {precision} is exported by {', '.join(elsewhere)}" if elsewhere else ""
    return f"{fmt} exports {listed} only{hint}"


def io_not_taken(fmt: str, io: str) -> str | None:
    """Why ``io: IO`` does not apply to ``fmt`` (naming the formats it applies to), or None."""
    if io in EXPORT_IO.get(fmt, ()):
        return None
    takes = [f for f, kinds in EXPORT_IO.items() if io in kinds]
    where = f"formats {' and '.join(takes)}" if len(takes) > 1 else f"format {''.join(takes)}"
    return f"io {io} applies to {where}"
