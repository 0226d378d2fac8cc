"""PyTorch eager runtime (format ``torch``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from modelpress.core.process import torch_threads
from modelpress.runtimes.base import Runtime
from modelpress.sources.models import eval_mode, first_tensor

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
        self._previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads)

    def _forward(self, tensors: list[torch.Tensor]) -> np.ndarray:
        with torch.inference_mode():
            out = first_tensor(self.module(*tensors), self.artifact.name)
        return out.float().numpy()

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self._forward([torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
        return lambda: self._forward(tensors)

    def param_count(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def close(self) -> None:
        torch.set_num_threads(self._previous_threads)
