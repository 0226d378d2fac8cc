"""PyTorch eager runtime (format ``torch``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from modelpress.core.process import torch_threads
from modelpress.runtimes.base import Runtime
from modelpress.sources.models import all_tensors, eval_mode, output_names

__all__ = ["TorchRuntime", "torch_threads"]  # torch_threads: from core/process, for training


class TorchRuntime(Runtime):
    """Runs on ``threads`` torch threads from its creation to ``close``, which puts back the
    count it found (torch's is process-wide: left set, it would leak into training)."""

    name = "torch"

    def __init__(self, artifact, threads: int) -> None:
        super().__init__(artifact, threads)
        if artifact.module is None:
            raise ValueError(f"{artifact.name}: a torch artifact needs its module")
        self.module = eval_mode(artifact.module)
        self._names: list[str] | None = None
        self._previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads)

    def _forward(self, tensors: list[torch.Tensor]) -> list[np.ndarray]:
        with torch.inference_mode():
            raw = self.module(*tensors)
        self._names = self._names or output_names(raw)
        return [o.float().numpy() for o in all_tensors(raw, self.artifact.name)]

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self._forward([torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])

    def output_names(self) -> list[str]:
        return self._names or super().output_names()

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
        return lambda: self._forward(tensors)

    def param_count(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def close(self) -> None:
        torch.set_num_threads(self._previous_threads)
