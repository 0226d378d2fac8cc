"""What a node of the step graph reads, as digests: the files named as models or weights, the
data as loaded, a module's weights. A node's key holds them, so editing ``mynet.py``, replacing
a weights file or deleting a class folder recomputes what depends on it (``--resume`` reuses a
node only when everything it read is unchanged)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _module_file(name: str) -> Path | None:
    """The source file of ``package.module`` without importing it (None when not found)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and Path(origin).is_file() else None


def source_files(source: str | None) -> list[Path]:
    """The files a model source is read from: ``file.py`` of ``file.py:factory``, the module
    file of ``package.module:factory``, or the saved model itself. Zoo models are code of this
    package, which the node key holds by version."""
    if not source or source == "input" or source.startswith("zoo:"):
        return []
    head, sep, _ = source.rpartition(":")
    if sep and head.endswith(".py"):
        return [Path(head)] if Path(head).is_file() else []
    path = Path(source)
    if path.is_file():
        return [path]
    if sep and head and "/" not in head:
        found = _module_file(head)
        return [found] if found else []
    return []


def sources_digest(sources: Iterable[str | None]) -> dict[str, str]:
    """``{file: digest}`` of every file the sources name (weights files included)."""
    out: dict[str, str] = {}
    for source in sources:
        for path in source_files(source):
            out[str(path)] = file_digest(path)
    return out


def arrays_digest(arrays: Iterable[np.ndarray | None]) -> str:
    """One digest of arrays: their dtypes, shapes and bytes (the data as a step sees it)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def module_digest(module: Any) -> str:
    """Digest of a torch module's state (weights and buffers, by name)."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    for name, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor) or value.is_quantized:
            h.update(f"{name}{value!r}".encode())
            continue
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}{t.dtype}{tuple(value.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
