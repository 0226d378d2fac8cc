"""What machine measured the numbers: versions, CPU, threads. Written to env.json and the record."""

from __future__ import annotations

import os
import platform
from importlib import metadata

_PACKAGES = (
    "modelpress",
    "torch",
    "torchao",
    "onnx",
    "onnxruntime",
    "onnxslim",
    "numpy",
    "litert-torch",
    "ai-edge-litert",
    "torch-pruning",
    "nncf",
    "openvino",
)


def _cpu() -> dict:
    info: dict = {"model": platform.processor() or None, "flags": []}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not info.get("name"):
                    info["model"] = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    info["flags"] = sorted(
                        flags
                        & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma", "f16c"}
                    )
                    break
    except OSError:
        pass
    return info


def collect(threads: int) -> dict:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu(),
        "logical_cores": os.cpu_count(),
        "threads": threads,
        "packages": versions,
    }
