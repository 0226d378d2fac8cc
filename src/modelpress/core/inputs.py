"""Model input specs: names, shapes (batch first) and dtypes.

Accepted forms (CLI flag or recipe value):
  ``1,3,32,32``                          one input, float, batch 1
  ``ids:1,128:int64;mask:1,128:int64``   several named inputs (``x`` also works as a separator)
  ``[1, 3, 32, 32]`` or ``{ids: [1, 128], mask: [1, 128]}``  in a recipe
A dtype left out follows the data, so integer token ids stay integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelpress.errors import RecipeError

_DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # batch first
    dtype: str | None = None  # None: follow the data

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.name}:{dims}" + (f":{self.dtype}" if self.dtype else "")


def _dims(text: str, where: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,x×\s]+", text.strip().strip("[]()")) if p]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise RecipeError(
            f"{where}: '{text}' is not a shape; write dimensions as integers, e.g. 1,3,32,32"
        ) from None
    if not dims or any(d < 1 for d in dims):
        raise RecipeError(f"{where}: '{text}' needs positive dimensions, batch first (1,3,32,32)")
    return dims


def _dtype(text: str | None, where: str) -> str | None:
    if text is None or text == "":
        return None
    if text not in _DTYPES:
        raise RecipeError(f"{where}: unknown dtype '{text}'; use one of {', '.join(_DTYPES)}")
    return text


def _one(name: str, shape: Any, dtype: str | None, where: str) -> InputSpec:
    if not _NAME.match(name):
        raise RecipeError(
            f"{where}: input name '{name}' must be an identifier (letters, _ , digits)"
        )
    if isinstance(shape, str):
        dims = _dims(shape, where)
    elif isinstance(shape, list | tuple) and all(isinstance(d, int) for d in shape):
        dims = _dims(",".join(str(d) for d in shape), where)
    else:
        raise RecipeError(f"{where}: shape of '{name}' must be a list of integers, got {shape!r}")
    return InputSpec(name, dims, _dtype(dtype, where))


def parse_input_shape(value: Any, where: str = "input_shape") -> list[InputSpec]:
    """Parse any accepted form into input specs (see the module docstring)."""
    if isinstance(value, list | tuple) and value and all(isinstance(d, int) for d in value):
        return [_one("input", list(value), None, where)]
    if isinstance(value, dict):
        specs = []
        for name, v in value.items():
            if isinstance(v, dict):
                specs.append(_one(str(name), v.get("shape"), v.get("dtype"), where))
            else:
                specs.append(_one(str(name), v, None, where))
        if not specs:
            raise RecipeError(f"{where}: no inputs given")
        return specs
    if isinstance(value, str):
        text = value.strip()
        if ":" not in text and ";" not in text:
            return [InputSpec("input", _dims(text, where))]
        specs = []
        for i, part in enumerate(p for p in text.split(";") if p.strip()):
            fields = part.strip().split(":")
            if len(fields) == 1:
                specs.append(InputSpec(f"input{i}", _dims(fields[0], where)))
            elif len(fields) in (2, 3):
                dtype = fields[2] if len(fields) == 3 else None
                specs.append(_one(fields[0].strip(), fields[1], dtype, where))
            else:
                raise RecipeError(f"{where}: '{part}' should read name:dims[:dtype]")
        return specs
    raise RecipeError(
        f"{where}: expected a shape like 1,3,32,32 or name:1,128:int64;..., got {value!r}"
    )


def format_input_shape(specs: list[InputSpec]) -> str:
    """The inverse of ``parse_input_shape`` (for saved recipes)."""
    if len(specs) == 1 and specs[0].name == "input" and specs[0].dtype is None:
        return ",".join(str(d) for d in specs[0].shape)
    return ";".join(s.describe() for s in specs)
