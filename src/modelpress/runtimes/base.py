"""The one Runtime interface, and the one batching loop every runtime shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from modelpress.core.inputs import InputSpec

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact


# What an op of a quantized graph does: computes on integers or on floats, converts between the
# two, or only moves data (reshape, transpose, pad, layout reorders).
OpKind = Literal["int8", "float", "quantize", "dequantize", "layout"]


@dataclass(frozen=True)
class GraphOp:
    """One op of a graph, as a runtime reads or runs it."""

    type: str  # the runtime's own name: QLinearConv, HARD_SWISH, Convolution (HSwish)
    kind: OpKind
    ms: float | None = None  # median time per run from the runtime's profiler, where it has one


@dataclass
class GraphView:
    """A graph's ops and multiply-accumulates split by what they compute in (int8 coverage)."""

    source: str  # what was read, in words
    ops: list[GraphOp]
    macs_int8: int | None = None  # conv / matmul / gemm / fully connected, one inference
    macs_float: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # runtime-specific (delegation)


class Runtime(ABC):
    name: ClassVar[str]
    # compiles a model per input shape: a split's shorter last batch is padded to the batch size
    # (its extra rows dropped) rather than compiled for
    pads_last_batch: ClassVar[bool] = False

    def __init__(self, artifact: Artifact, threads: int) -> None:
        self.artifact = artifact
        self.threads = threads
        self.fixed_batch: int | None = None  # set when the artifact only takes one batch size

    @abstractmethod
    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One batch in (numpy, one array per input), every output out, in the model's output
        order, as float32 numpy (a detector's boxes and scores, a model's logits and features)."""

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        """One batch in, the first output out (what a class head's metrics read)."""
        return self.run_all(inputs)[0]

    def output_names(self) -> list[str]:
        """The outputs' names, in order (``output``, ``output_1``... where a format has none)."""
        return ["output"]

    def param_count(self) -> int | None:
        return None

    def precision(self) -> str:
        """What the loaded model computes in (deployed files say it themselves)."""
        return self.artifact.precision

    def input_specs(self) -> list[InputSpec]:
        """The inputs the loaded model declares (batch first; a free batch dimension reads 1)."""
        return list(self.artifact.input_specs)

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        """A zero-argument call of one batch, for timing: inputs converted once, up front.
        ``read_outputs`` turns what it returns into the outputs."""
        return lambda: self.run_all(inputs)

    def read_outputs(self, result: object) -> list[np.ndarray]:
        """Every output (float32 numpy, in the model's order) from what a ``prepare``d call
        returned: what a postprocess reads after the model, timed with it."""
        return [np.asarray(o, dtype=np.float32) for o in result]  # type: ignore[attr-defined]

    def predict_all(self, inputs: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
        """Every output for a whole split, batch by batch (fixed-batch artifacts, and those
        compiled per shape: last batch padded); one (N, ...) array per output."""
        n = len(inputs[0])
        pad = self.fixed_batch is not None or self.pads_last_batch
        if self.fixed_batch is not None:
            batch_size = self.fixed_batch
        elif self.pads_last_batch:
            batch_size = max(1, min(batch_size, n))  # a split smaller than a batch: its size
        outs: list[list[np.ndarray]] = []
        for start in range(0, n, batch_size):
            chunk = [a[start : start + batch_size] for a in inputs]
            real = len(chunk[0])
            if pad and real < batch_size:
                chunk = [
                    np.concatenate([c, np.repeat(c[-1:], batch_size - real, 0)]) for c in chunk
                ]
            outs.append([np.asarray(o)[:real] for o in self.run_all(chunk)])
        return [
            np.concatenate(parts).astype(np.float32, copy=False)
            for parts in zip(*outs, strict=True)
        ]

    def predict(self, inputs: list[np.ndarray], batch_size: int) -> np.ndarray:
        """The first output for a whole split (see ``predict_all``)."""
        return self.predict_all(inputs, batch_size)[0]

    def int8_graphs(self, inputs: list[np.ndarray]) -> dict[str, GraphView] | None:
        """What a quantized model runs: ``runtime``, the graph this runtime executes (read from
        it, timed by its profiler on ``inputs`` where it has one), and ``model``, the graph the
        file holds, where the two differ. None where this runtime cannot say."""
        return None

    def close(self) -> None:  # noqa: B027 — optional hook
        pass
