"""Memory: how much this machine has free, and what one forward of a model would need.

The forward is estimated on PyTorch's ``meta`` device, where tensors have shapes and no storage:
an input shape whose activations cannot fit is refused with a number, not by the allocator
half-way through loading (or by the kernel's OOM killer).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_left() -> int | None:
    """What a cgroup v2 memory limit leaves (page cache it may reclaim counts as free)."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((root / "memory.current").read_text())
        stat = dict(line.split() for line in (root / "memory.stat").read_text().splitlines())
        used -= int(stat.get("inactive_file", 0))
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory free for this process: MemAvailable, capped by a cgroup limit; None if unknown."""
    found = [v for v in (_meminfo_available(), _cgroup_left()) if v is not None]
    return min(found) if found else None


def fmt_bytes(n: float) -> str:
    """``512 B``, ``21.1 MB``, ``150 GB``, ``4,547 TB``."""
    units = ("B", "KB", "MB", "GB", "TB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    if i == 0:
        return f"{n:.0f} B"
    return f"{n:.1f} {units[i]}" if n < 100 else f"{n:,.0f} {units[i]}"


class _Largest(TorchFunctionMode):
    """Notes the largest tensor any torch function returns, and which function."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes, self.op = 0, ""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.numel() * t.element_size() > self.bytes:
                self.bytes = t.numel() * t.element_size()
                self.op = getattr(func, "__name__", str(func))
        return out


def largest_activation(
    module: torch.nn.Module, shapes: list[tuple[int, ...]], dtypes: list[torch.dtype]
) -> tuple[int, str]:
    """Bytes of the largest tensor one forward makes at ``shapes``, and the function making it,
    found on the meta device (no memory used). A model meta cannot run through all the way
    (data-dependent code, tensors kept outside its parameters) counts up to where it stopped:
    the first layers, where an oversized input shows first."""
    from torch.func import functional_call

    state = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    meta = {k: torch.empty_like(v, device="meta") for k, v in state.items()}
    inputs = tuple(
        torch.empty(s, dtype=d, device="meta") for s, d in zip(shapes, dtypes, strict=True)
    )
    mode = _Largest()
    try:
        with torch.no_grad(), mode:
            functional_call(module, meta, inputs)
    except Exception:  # an estimate: what ran is what counts
        pass
    return mode.bytes, mode.op
