"""A deployed file measured in a process of its own, so that a runtime that crashes costs that
artifact and never the run.

ONNX Runtime, LiteRT and OpenVINO are native code: OpenVINO 2026.4.1 segfaulted on every
detector (exit 139, no record). For a file in one of them (``isolated``), the child that measures
its own-process peak memory (``own_process``) does every measurement: it loads the file through
modelpress's runtime class, runs it at each batch size for its peak memory, times it
(``benchmark_runtime``: latency, throughput, the task's postprocess in the model's loop),
evaluates it on the validation split and reads its int8 coverage. The split is saved beside the
child's spec and memory-mapped; the outputs come back in a file; the folder is then removed.
So there is no extra process per artifact, and the figures are those of a process holding the
runtime only, as a device would.

The child tells modelpress's process what it is doing over a pipe, one JSON line at a time, and
asks it for the timing lock (``guard``: parallel search workers never time at once) around its
timings only. A child killed by a signal, or exiting without its result, is one line: "the
runtime crashed (signal 11, SIGSEGV) while timing it…", raised as a ``StepError``, so the
runner records that node failed and goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress import errors
from modelpress.engine.measure import own_process

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.sources.data import Split

# Formats whose runtime is native code, measured in a child. Torch formats stay in modelpress's
# process, where torch is loaded already (a child would spend 2 s importing it).
FORMATS = ("onnx", "tflite", "openvino")
Guard = Callable[[], contextlib.AbstractContextManager[None]]


def isolated(artifact: Artifact) -> bool:
    """Whether ``measure`` runs the artifact in a process of its own."""
    return artifact.path is not None and artifact.format in FORMATS


@dataclass
class Measured:
    """What a runtime says of an artifact: the entry's runtime figures and its outputs."""

    outputs: list[np.ndarray]  # every output on the validation split, in the model's order
    names: list[str]
    bench: dict[str, Any]  # benchmark_runtime's, with end_to_end_ms where the task times one
    params: int | None  # None: read from the file (``runtimes.file_param_count``)
    coverage: dict[str, Any] | None
    runtime: str
    fixed_batch: int | None
    window: list[float]  # wall-clock seconds: when the timing ran
    own_memory: dict[str, Any]  # the record's peak_memory_own_process


def measure(
    artifact: Artifact,
    validation: Split,
    *,
    threads: int,
    eval_batch_size: int,
    batch_sizes: list[int],
    warmup: int,
    repeats: int,
    task: Any = None,
    guard: Guard = contextlib.nullcontext,
    own_memory: bool = True,
    coverage: bool = True,
) -> Measured:
    """Measure ``artifact`` in a child process. ``task``: a task whose postprocess is timed
    with the model (sent to the child as its name and bound settings, as JSON); ``guard``:
    entered around the child's timings;
    ``own_memory``, ``coverage`` False: the child skips its peak-memory runs, the int8
    coverage (``evaluate.own_process_memory``, ``evaluate.int8_coverage`` off); it still runs
    the file apart, so a runtime that crashes costs that artifact only.
    Raises ``StepError`` when the child dies, the runtime's own error when it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modelpress-measure-") as tmp:
        work = Path(tmp)
        spec = {
            "name": artifact.name,
            "format": artifact.format,
            "precision": artifact.precision,
            "path": str(Path(artifact.path).resolve()),  # type: ignore[arg-type]
            "input_transform": artifact.input_transform or None,
            "threads": threads,
            "calls": own_process.CALLS,
            "eval_batch_size": eval_batch_size,
            "batch_sizes": batch_sizes,
            "warmup": warmup,
            "repeats": repeats,
            "own_memory": own_memory,
            "coverage": coverage,
            "inputs": [str(p) for p in _save(validation, work)],
            "task": None,
            "out": str(work / "result.json"),
            "outputs": str(work / "outputs.npz"),
        }
        if task is not None:  # its name and bound settings: the child rebuilds it from them
            spec["task"] = {"name": task.name, "bound": task.bound_settings()}
        (work / "spec.json").write_text(json.dumps(spec))
        code, phase, log = _run_child(work, guard)
        result = own_process.read_result(work / "result.json")
        if result is None:
            raise errors.StepError(_crashed(artifact.name, code, phase, log))
        if "error" in result:
            kind = getattr(errors, str(result.get("kind")), None)
            own = isinstance(kind, type) and issubclass(kind, errors.ModelpressError)
            raise (kind if own else errors.StepError)(result["error"])  # type: ignore[misc]
        with np.load(work / "outputs.npz") as z:
            outputs = [z[f"arr_{i}"] for i in range(len(z.files))]
    own = result["own_memory"]  # as own_process_peak gives it: at the throughput batch
    at = {b["batch"]: b["mb"] for b in own.get("by_batch", [])}
    batch = result["bench"]["throughput_batch"]
    if "skipped" in own:
        pass
    elif batch in at:
        own = {"mb": at[batch], "batch": batch, **own}
        own["seconds"] = round(time.perf_counter() - started, 2)
        own["timed_between"] = result["window"]  # run with the timing, under its guard
    else:
        own = {"error": f"its runtime did not run batch {batch} in its own process"}
    return Measured(
        outputs=outputs,
        names=result["names"],
        bench=result["bench"],
        params=None,  # read from the file by modelpress's process (ONNX: importing onnx, 1.3 s)
        coverage=result["coverage"],
        runtime=result["runtime"],
        fixed_batch=result["fixed_batch"],
        window=result["window"],
        own_memory=own,
    )


def _save(split: Split, work: Path) -> list[Path]:
    """The split's inputs as .npy files in ``work`` (one per input), for the child to
    memory-map. Written for each artifact, in its own temporary folder: a cache kept across
    artifacts outlived the processes Ray kills at the end of a search."""
    paths = [work / f"input_{i}.npy" for i in range(len(split.inputs))]
    for path, array in zip(paths, split.inputs, strict=True):
        np.save(path, np.ascontiguousarray(array))
    return paths


def _run_child(work: Path, guard: Guard) -> tuple[int, str, str]:
    """Start the child on ``work/spec.json`` and serve it until it exits: its phases, and the
    timing guard when it asks. Returns (exit code, its last phase, the end of its log)."""
    read_fd, write_fd = os.pipe()
    log_path = work / "log.txt"
    phase, held = "starting its process", None
    with open(log_path, "w") as log:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", __name__, str(work / "spec.json"), str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log,  # library chatter: kept for the reason a child gives when it fails
                stderr=log,
                pass_fds=(write_fd,),
                env=own_process.child_env(),
                text=True,
            )
        except OSError as e:
            os.close(read_fd)
            raise errors.StepError(f"cannot start a process to measure it in ({e})") from None
        finally:
            os.close(write_fd)  # the child holds the other end: EOF when it exits
        try:
            with os.fdopen(read_fd) as messages:
                for line in messages:
                    message = json.loads(line)
                    phase = message.get("phase", phase)
                    if message.get("guard") is True and held is None:
                        held = guard()
                        held.__enter__()
                        _tell(child, "go")
                    elif message.get("guard") is False and held is not None:
                        held.__exit__(None, None, None)
                        held = None
            code = child.wait()
        finally:
            if held is not None:
                held.__exit__(None, None, None)
            if child.poll() is None:  # interrupted here (Ctrl-C, a deadline): no orphan
                child.kill()
                child.wait()
    text = log_path.read_text(errors="replace")
    from modelpress.chatter import verbose

    if verbose():  # --verbose: the libraries' own output, as it would be in this process
        sys.stderr.write(text)
    return code, phase, text


def _tell(child: subprocess.Popen[str], word: str) -> None:
    with contextlib.suppress(OSError):  # a child that died meanwhile: its exit says why
        child.stdin.write(word + "\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]


def _crashed(name: str, code: int, phase: str, log: str) -> str:
    """One line on a child that left no result: the signal that ended it, or its last words."""
    if code < 0:
        try:
            signame = signal.Signals(-code).name
        except ValueError:
            signame = "unknown"
        hint = " (out of memory?)" if signame == "SIGKILL" else ""
        how = f"crashed (signal {-code}, {signame}){hint}"
    else:
        from modelpress.chatter import drop_banners

        lines = [ln.strip() for ln in drop_banners(log).splitlines() if ln.strip()]
        last = f": {lines[-1][:200]}" if lines else ""
        how = f"exited with code {code}{last}"
    return (
        f"{name}: the runtime {how} while {phase}, in the process measuring it; the other "
        "artifacts are measured as usual"
    )


# ---------------------------------------------------------------------------- the child side


def _child(spec_path: str, fd: int) -> int:
    spec = json.loads(Path(spec_path).read_text())
    with os.fdopen(fd, "w", buffering=1) as pipe:

        def say(**message: Any) -> None:
            pipe.write(json.dumps(message) + "\n")

        try:
            result = _measure(spec, say)
            code = 0
        except Exception as e:  # the parent raises it again, one line
            result, code = own_process.child_error(e), 1
    Path(spec["out"]).write_text(json.dumps(result, default=_plain))
    return code


def _plain(value: Any) -> Any:
    """numpy scalars (a runtime's counts, a profiler's times) as JSON numbers."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _measure(spec: dict[str, Any], say: Callable[..., None]) -> dict[str, Any]:
    from modelpress.engine.measure.benchmark import benchmark_runtime
    from modelpress.engine.measure.coverage import int8_coverage

    say(phase="loading it")
    idle = own_process.import_runtime(spec)
    runtime = own_process.load(spec)
    loaded = own_process.status_mb("VmRSS")
    inputs = [np.load(p, mmap_mode="r") for p in spec["inputs"]]
    n = len(inputs[0])

    def sample_batch(batch: int) -> list[np.ndarray]:  # as Split.sample_batch
        idx = np.arange(batch) % n
        return [np.ascontiguousarray(a[idx]) for a in inputs]

    post = None
    if spec["task"]:
        from modelpress.tasks import get_task

        task = get_task(spec["task"]["name"]).with_bound(spec["task"]["bound"])
        post = task.timed_postprocess
    fixed = runtime.fixed_batch
    measured = [b for b in spec["batch_sizes"] if fixed is None or b == fixed] or [fixed or 1]
    try:
        say(phase="waiting for the timing lock", guard=True)
        if sys.stdin.readline().strip() != "go":
            raise errors.StepError("modelpress's process stopped before the timing")
        window = [time.time()]
        by_batch = None
        if spec["own_memory"]:
            say(phase=f"running it at batch {', '.join(map(str, measured))} for its peak memory")
            by_batch = own_process.peaks(
                runtime, sorted({measured[0], max(measured)}), sample_batch, spec["calls"]
            )
        say(phase=f"timing it at batch {', '.join(map(str, spec['batch_sizes']))}")
        bench = benchmark_runtime(
            runtime,
            sample_batch,
            batch_sizes=spec["batch_sizes"],
            warmup=spec["warmup"],
            repeats=spec["repeats"],
            postprocess=post,
        )
        window.append(time.time())
        say(phase="evaluating it on the validation split", guard=False)
        outputs = runtime.predict_all(inputs, spec["eval_batch_size"])
        say(phase="reading what it runs in int8")
        coverage = int8_coverage(runtime, sample_batch(fixed or 1), spec["coverage"])
        names = runtime.output_names()
    finally:
        runtime.close()
    np.savez(spec["outputs"], *outputs)
    if by_batch is None:
        own: dict[str, Any] = {"skipped": own_process.OFF}
    else:
        own = own_process.facts(runtime, spec, idle, loaded) | {"by_batch": by_batch}
    return {
        "names": names,
        "bench": bench,
        "coverage": coverage,
        "runtime": runtime.name,
        "fixed_batch": fixed,
        "window": window,
        "own_memory": own,
    }


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], int(sys.argv[2])))
