"""Peak memory as a device would see it: each deployed artifact run in a process of its own.

In modelpress's process every artifact's peak RSS includes torch and every runtime loaded so far
(600–1100 MB), which says nothing about a phone's budget. Here a fresh interpreter
(``python -m modelpress.evaluate.own_process SPEC.json``) imports only the artifact's runtime
(onnxruntime, LiteRT, OpenVINO; torch for a TorchScript or ``.pt2`` file), notes its RSS
(``idle_mb``), loads the file through modelpress's own runtime class (the same session options,
interpreter and compile config, the same thread count), runs a few calls of the real batch at
each batch size asked, smallest first, and reports its high-water mark (VmHWM) after each: the
peak of a process that imports the runtime, loads the model and runs it.

Not measured (``skipped``): a torch model held in memory (the baseline: no file a device would
load) and a modelpress ``.pt`` checkpoint (rebuilt from the model's Python code, not from the file
alone); their one figure is the in-process one.

This module imports nothing heavy at the top, and the child imports no modelpress module that
pulls torch for a non-torch format: it reports ``torch_loaded`` from its ``sys.modules``.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact

TIMEOUT_S = 120.0
OFF = "not measured (evaluate.own_process_memory off)"
CALLS = 5  # per batch size; the first ones grow the runtime's arenas and pack weights: all count

# What the child imports before loading the model: the runtime a device would ship. A .pt2's
# graph calls quantized_decomposed ops (registered by a torch module), and a dynamic-int8 one
# holds torchao's Int8Tensor weights: those are part of what loading it needs.
_RUNTIME_LIBRARIES = {
    "onnx": ["onnxruntime"],
    "tflite": ["ai_edge_litert.interpreter"],
    "openvino": ["openvino"],
    "torchscript": ["torch"],
    "torch": ["torch", "torch.ao.quantization.fx._decomposed"],
}
_TORCHAO = "torchao.quantization"
# Libraries whose presence in the child says what it carried (reported as ``libraries``).
_WATCHED = ("torch", "torchao", "onnx", "onnxruntime", "ai_edge_litert", "openvino", "tensorflow")


def skip_reason(artifact: Artifact) -> str | None:
    """Why an artifact has no own-process figure, or None when it can be measured."""
    if artifact.path is None:
        return "held in memory, no file: nothing a device would load on its own"
    if artifact.format == "torch" and Path(artifact.path).suffix != ".pt2":
        return (
            "a modelpress checkpoint is rebuilt from the model's Python code, not loaded from "
            "the file alone; export it (TorchScript, .pt2, ONNX, TFLite) to measure it"
        )
    return None


def own_process_peak(
    artifact: Artifact,
    sample_batch: Callable[[int], list[np.ndarray]],
    *,
    batches: list[int],
    batch: int,
    threads: int,
    calls: int = CALLS,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The record's ``peak_memory_own_process``: ``{mb, batch, idle_mb, loaded_mb, runtime,
    threads, calls, by_batch, torch_loaded, libraries, seconds}``, or ``{skipped:
    reason}``, or ``{error: one line}``. ``batches``: the sizes run (smallest first); ``batch``:
    the one whose peak is ``mb`` (the in-process figure's, so the two compare). Never raises for
    the artifact's sake: a child that fails, crashes or hangs past ``timeout`` (default
    ``TIMEOUT_S``) is a reason."""
    timeout = TIMEOUT_S if timeout is None else timeout
    reason = skip_reason(artifact)
    if reason:
        return {"skipped": reason}
    path = Path(artifact.path).resolve()  # type: ignore[arg-type]
    if not path.is_file():
        return {"error": f"{path}: file not found"}
    sizes = sorted(set(batches) | {batch})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modelpress-peak-") as tmp:
        inputs, out = Path(tmp) / "inputs.npz", Path(tmp) / "result.json"
        transform = getattr(artifact, "input_transform", None)

        def batch_of(b: int) -> list[np.ndarray]:
            if not transform:
                return sample_batch(b)
            from modelpress.runtimes.adapt import to_pixels

            return to_pixels(sample_batch(b), transform)  # what its camera would hand it

        np.savez(inputs, **{f"b{b}_{i}": a for b in sizes for i, a in enumerate(batch_of(b))})
        spec = {
            "name": artifact.name,
            "format": artifact.format,
            "precision": artifact.precision,
            "path": str(path),
            "threads": threads,
            "batches": sizes,
            "calls": calls,
            "inputs": str(inputs),
            "out": str(out),
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        try:
            done = subprocess.run(
                [sys.executable, "-m", __name__, str(spec_path)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=child_env(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"its own process did not finish in {timeout:g} s (killed)"}
        except OSError as e:
            return {"error": f"cannot start its own process ({type(e).__name__}: {e})"}
        result = read_result(out)
        if result is None:
            return {"error": _crash_reason(done)}
    if "error" in result:
        return {"error": str(result["error"])}
    at = {b["batch"]: b["mb"] for b in result["by_batch"]}
    if batch not in at:
        return {"error": f"its runtime did not run batch {batch} in its own process"}
    return {
        "mb": at[batch],
        "batch": batch,
        **result,
        "seconds": round(time.perf_counter() - started, 2),
    }


def child_env() -> dict[str, str]:
    """The parent's environment, with this modelpress's source tree first on the path, so the
    child runs the same code whatever put it on the parent's ``sys.path``. An installed
    modelpress (in site-packages) is found as usual: site-packages is not put ahead of the
    standard library."""
    import site

    import modelpress

    root = Path(modelpress.__file__).resolve().parent.parent
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    env = dict(os.environ)
    if root not in installed:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _crash_reason(done: subprocess.CompletedProcess[str]) -> str:
    """One line on a child that wrote no result: the signal that ended it, or its last words."""
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"its own process was killed by {name}{hint}"
    from modelpress.chatter import drop_banners

    lines = [ln.strip() for ln in drop_banners(done.stderr or "").splitlines() if ln.strip()]
    last = lines[-1][:300] if lines else "no message"
    return f"its own process exited with code {done.returncode}: {last}"


# ---------------------------------------------------------------------------- the child side


@dataclass
class _File:
    """What a runtime reads of an artifact. The child cannot build an ``Artifact`` (its module
    imports torch); the runtimes read these fields only."""

    name: str
    format: str
    path: Path
    precision: str
    input_specs: list[Any] = field(default_factory=list)
    module: Any = None  # torch formats: the loaded module
    companions: list[Path] = field(default_factory=list)
    extra_files: list[Path] = field(default_factory=list)
    input_transform: dict[str, Any] | None = None


def status_mb(key: str) -> float | None:
    from modelpress.evaluate.benchmark import proc_status_kb

    kb = proc_status_kb(key)
    return None if kb is None else kb / 1024


def _peak_mb() -> float:
    """The process's high-water mark so far: VmHWM (the mark of this process's own memory, new
    at exec), or ru_maxrss where there is no /proc. Not ru_maxrss on Linux: it keeps the
    spawning process's mark across exec (a child of a torch process that never passed 65 MB
    read 223 MB)."""
    hwm = status_mb("VmHWM")
    if hwm is not None:
        return hwm
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def import_runtime(spec: dict[str, Any]) -> float | None:
    """Import what loading the artifact needs (its runtime, as a device ships it); the RSS
    after, in MiB (``idle_mb``)."""
    from modelpress.extras import require

    fmt = spec["format"]
    libraries = list(_RUNTIME_LIBRARIES[fmt])
    if fmt == "torch" and spec["precision"] == "int8-dynamic":
        libraries.append(_TORCHAO)
    for name in libraries:
        if name == "ai_edge_litert.interpreter":
            require(name, "tflite", "the tflite format")
        elif name == "openvino":
            require(name, "openvino", "the OpenVINO format")
        else:
            importlib.import_module(name)
    return status_mb("VmRSS")


def peaks(
    runtime: Any, batches: list[int], batch_of: Callable[[int], list[np.ndarray]], calls: int
) -> list[dict[str, Any]]:
    """``calls`` calls at each batch size (smallest first), the high-water mark after each."""
    by_batch = []
    for b in batches:
        if runtime.fixed_batch is not None and b != runtime.fixed_batch:
            continue  # the benchmark skips it too
        call = runtime.prepare(batch_of(b))
        for _ in range(calls):
            call()
        by_batch.append({"batch": b, "mb": _peak_mb()})
    return by_batch


def facts(runtime: Any, spec: dict[str, Any], idle: float | None, loaded: float | None) -> dict:
    """What the record says of the child beside its peaks."""
    return {
        "runtime": runtime.name,
        "idle_mb": idle,
        "loaded_mb": loaded,
        "threads": spec["threads"],
        "calls": spec["calls"],
        "torch_loaded": "torch" in sys.modules,
        "libraries": sorted(m for m in _WATCHED if m in sys.modules),
    }


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """The child's work, in its own process: import the runtime, load the file, run it."""
    idle = import_runtime(spec)
    runtime = load(spec)
    loaded = status_mb("VmRSS")
    arrays = np.load(spec["inputs"])

    def batch_of(b: int) -> list[np.ndarray]:
        n = sum(1 for k in arrays.files if k.startswith(f"b{b}_"))
        return [arrays[f"b{b}_{i}"] for i in range(n)]  # in the model's input order

    try:
        by_batch = peaks(runtime, spec["batches"], batch_of, spec["calls"])
    finally:
        runtime.close()
    return facts(runtime, spec, idle, loaded) | {"by_batch": by_batch}


def load(spec: dict[str, Any]) -> Any:
    """The artifact's runtime, as modelpress's runtimes load it (``runtime_for``)."""
    from modelpress.runtimes import runtime_for

    file = _File(spec["name"], spec["format"], Path(spec["path"]), spec["precision"])
    file.input_transform = spec.get("input_transform")  # camera pixels: fed converted floats
    if file.format == "torch":  # a .pt2: loaded as modelpress loads one (no code runs)
        from modelpress.sources.models import load_exported

        file.module = load_exported(file.path)
    return runtime_for(file, spec["threads"])  # type: ignore[arg-type]


def child_error(e: Exception) -> dict[str, str]:
    """An exception raised in a child, as the parent reads it back: one line, and the kind of
    modelpress error it was (the parent raises the same kind)."""
    from modelpress.errors import ModelpressError, first_line

    text = str(e).strip()
    if isinstance(e, ModelpressError) and text:  # already names the file and the fix
        return {"error": text.splitlines()[0], "kind": type(e).__name__}
    return {"error": first_line(e)}


def _child(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = measure(spec)
        code = 0
    except Exception as e:  # the parent records it as the reason, one line
        result, code = child_error(e), 1
    Path(spec["out"]).write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
