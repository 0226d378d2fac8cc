"""TorchScript runtime (format ``torchscript``): loads the saved file, not the live module."""

from __future__ import annotations

import torch

from modelpress.runtimes.eager import TorchRuntime


class TorchScriptRuntime(TorchRuntime):
    name = "torchscript"

    def __init__(self, artifact, threads: int) -> None:
        module = torch.jit.load(str(artifact.path), map_location="cpu").eval()
        artifact.module = module
        super().__init__(artifact, threads)
