"""The Python API for a model in memory, in the style of ``nncf.quantize(model, dataset)``:

    import modelpress as mp
    result = mp.quantize(model, (x, y), method="static", formats=["onnx", "openvino"],
                         out="runs/q")
    result.artifact("export-onnx-int8").latency_p50_ms

``compress`` runs any steps, ``quantize`` the CLI's quantize graph (each format's FP32 export,
then its quantized one). Both build the same recipe the CLI would, run the same graph, write
the same run directory, and return the record, typed (``RunResult``). The module is copied,
never changed; data may be a data source string, arrays ``(x, y)`` or ``x`` alone (numpy or
torch), or a DataLoader yielding ``(x, y)`` batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.core.formats import METHOD_PRECISION, io_not_taken
from modelpress.core.record_schema import ArtifactRecord, RunRecord, check_record
from modelpress.errors import ModelpressError


@dataclass
class RunResult:
    """A finished run: its typed record and its directory."""

    record: RunRecord
    out: Path

    @property
    def baseline(self) -> ArtifactRecord:
        assert self.record.baseline is not None
        return self.record.baseline

    @property
    def artifacts(self) -> list[ArtifactRecord]:
        return self.record.artifacts

    def artifact(self, name: str) -> ArtifactRecord:
        return self.record.artifact(name)

    def path(self, name: str) -> Path | None:
        """The artifact's file, or None for one held in memory only."""
        rel = self.artifact(name).path
        return None if rel is None else self.out / rel


def compress(
    model: Any,
    data: Any,
    steps: Sequence[dict[str, Any] | Any] = (),
    *,
    out: str | Path,
    input_shape: str | Sequence[int] | None = None,
    task: str | dict[str, Any] | None = None,
    targets: dict[str, Any] | None = None,
    evaluate: dict[str, Any] | None = None,
    resume: bool = False,
    force: bool = False,
    observer: Any = None,
    **recipe: Any,
) -> RunResult:
    """Measure ``model`` (an ``nn.Module``, or any model source string) on ``data``, run
    ``steps`` (recipe step mappings or step configs) and return the run's typed record.
    ``out`` that holds a run already: ``resume`` goes on from what finished, ``force`` starts
    over (as the CLI's ``--resume`` / ``--force``); neither, an error naming both."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.pipeline import run

    out = Path(out)
    raw: dict[str, Any] = {
        "model": _model_source(model),
        "data": _data_source(data, out),
        "steps": [s if isinstance(s, dict) else s.to_dict() for s in steps],
        **recipe,
    }
    if input_shape is not None:
        raw["input_shape"] = (
            input_shape if isinstance(input_shape, str) else ",".join(map(str, input_shape))
        )
    for key, value in (("task", task), ("targets", targets), ("evaluate", evaluate)):
        if value is not None:
            raw[key] = value
    from modelpress.sources.memory import release_in_memory

    try:
        record = run(
            build_recipe(raw, "modelpress.compress"),
            out=out,
            resume=resume,
            force=force,
            observer=observer,
        )
    finally:  # the run holds its own copy; the registry must not keep the caller's module alive
        release_in_memory(raw["model"])
    return RunResult(check_record(record), out)


def quantize(
    model: Any,
    data: Any,
    method: str = "static",
    formats: Sequence[str] = ("onnx",),
    *,
    out: str | Path,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Quantize ``model`` to every format in ``formats`` (``method``: static, dynamic or fp16),
    each beside its FP32 export in the same runtime, as ``modelpress quantize`` does."""
    if method not in METHOD_PRECISION:
        raise ModelpressError(f"method '{method}': use static, dynamic or fp16")
    return compress(
        model, data, quantize_steps(method, list(formats), options or {}), out=out, **kwargs
    )


def quantize_steps(
    method: str, formats: list[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """For each format: its fp32 export (the reference in that runtime), then the quantized one
    with the options its backend's config takes (``calibration`` goes to ONNX only, ``io`` to
    the formats that take it); an option no requested format takes is refused."""
    from modelpress.steps.export import BACKENDS, backend_config

    steps: list[dict[str, Any]] = []
    used: set[str] = set()
    for fmt in formats:
        takes = backend_config(fmt).model_fields
        quantized = {
            "type": "export",
            "format": fmt,
            "precision": METHOD_PRECISION[method],
            **{k: v for k, v in options.items() if k in takes},
        }
        if "io" in quantized and io_not_taken(fmt, quantized["io"]):
            quantized.pop("io")  # io for the formats that take it (core/formats.py)
        used |= set(quantized)
        steps += [{"type": "export", "format": fmt}, quantized]
    unused = [k for k in options if k not in used and k != "io"]
    if unused and formats:
        flag = "--" + unused[0].replace("_", "-")
        takers = [f for f, c in BACKENDS.items() if unused[0] in c.model_fields]
        raise ModelpressError(
            f"{flag}: no format in --formats {','.join(formats)} takes it (the formats that "
            f"do: {', '.join(takers)}); drop it or add one of them"
        )
    return steps


def _model_source(model: Any) -> str:
    if isinstance(model, str | Path):
        return str(model)
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ModelpressError(
            f"model: an nn.Module or a model source string, got {type(model).__name__}"
        )
    from modelpress.sources.memory import hold_in_memory

    return hold_in_memory(model)


def _data_source(data: Any, out: Path) -> Any:
    """A data source string as it is; arrays or a DataLoader written to ``OUT.data.npz`` (beside
    the run directory, which a fresh run clears) and named as ``npz:``."""
    if isinstance(data, str | dict):
        return data
    x, y = _arrays(data)
    path = out.parent / f"{out.name}.data.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return f"npz:{path}"


def _numpy(a: Any, what: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:
        raise ModelpressError(f"data: {what} is not an array ({e})") from None


def _arrays(data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(data, tuple) and len(data) == 2:
        x, y = _numpy(data[0], "x"), _numpy(data[1], "y")
    elif isinstance(data, np.ndarray) or hasattr(data, "detach"):
        x, y = _numpy(data, "x"), None
    elif isinstance(data, Iterable):  # a DataLoader: (x, y) batches, or x alone
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        for batch in data:
            if isinstance(batch, list | tuple) and len(batch) == 2:
                xs.append(_numpy(batch[0], "a batch's x"))
                ys.append(_numpy(batch[1], "a batch's y"))
            else:
                xs.append(_numpy(batch, "a batch"))
        if not xs:
            raise ModelpressError("data: the DataLoader yielded no batch")
        x, y = np.concatenate(xs), (np.concatenate(ys) if ys else None)
    else:
        raise ModelpressError(
            "data: a data source string (builtin:digits, folder:PATH, npz:PATH, ...), arrays "
            f"(x, y), or a DataLoader of (x, y) batches; got {type(data).__name__}"
        )
    if y is not None and np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.int64)
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return x, y
