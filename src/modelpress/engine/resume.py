"""--resume: what an earlier run of the same recipe finished, found again. Its nodes by key
(``previous_nodes``), each node's saved validation outputs (``earlier_outputs``) and its
artifact rebuilt from its files (``restore``), never from outside the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.core.artifact import Artifact
from modelpress.core.graph import BASELINE
from modelpress.core.rundir import RunDir
from modelpress.errors import ResumeError, first_line

if TYPE_CHECKING:
    from modelpress.engine.context import Context

OUTPUTS = "outputs.npz"  # validation outputs of a node's artifact (every output), for its children


def save_outputs(path: Path, outputs: list[np.ndarray]) -> None:
    np.savez(path, *outputs)  # arr_0, arr_1, ... in the model's output order


def load_outputs(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def earlier_outputs(
    path: Path, entry: dict[str, Any], samples: int
) -> tuple[list[np.ndarray] | None, str | None]:
    """A finished node's saved outputs for --resume, or (None, why not) when the file is
    missing, unreadable (truncated, not an .npz) or not what its record describes (another
    count of outputs, of samples or another shape): the node is then measured again."""
    if not path.is_file():
        return None, f"{path} is missing"
    try:
        outputs = load_outputs(path)
    except Exception as e:  # zipfile, zlib, numpy's format checks: each its own exception
        return None, f"{path} cannot be read ({first_line(e, 120)})"
    described = entry.get("outputs")
    shapes = [list(o.shape[1:]) for o in outputs]
    if not outputs or any(len(o) != samples for o in outputs):
        return None, f"{path} does not hold {samples} samples of every output"
    if isinstance(described, list) and shapes != [d.get("shape") for d in described]:
        return None, f"{path} holds outputs of shapes {shapes}, not those its record describes"
    return outputs, None


def check_resume(previous: dict[str, Any] | None, identity: dict[str, Any], root: Path) -> None:
    if previous is None:
        return
    before = previous.get("identity", {})
    differs = sorted(k for k in set(before) | set(identity) if before.get(k) != identity.get(k))
    if differs:
        raise ResumeError(
            f"{root}: --resume on a run made from a different recipe ({', '.join(differs)} "
            "differ); drop --resume to start over with --force, or pick another --out"
        )


def previous_nodes(previous: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The earlier run's nodes by key: its steps (with their artifacts) and its baseline."""
    if not previous or previous.get("schema", 1) < 2:
        return {}  # schema 1 keyed nothing: everything is measured again
    out: dict[str, dict[str, Any]] = {}
    for node in previous.get("nodes") or []:
        if isinstance(node, dict) and node.get("id") == BASELINE and node.get("key"):
            out[node["key"]] = node
    for step in previous.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("key"), str):
            out[step["key"]] = step
    return out


def inside(rd: RunDir, value: Any, field: str) -> Path:
    """A path the record names, only if it lies in the run directory: a record that points
    elsewhere (edited, or from a run moved since) never makes modelpress read outside it."""
    root = rd.root.resolve()
    path = (root / value).resolve() if isinstance(value, str) and value else None
    if path is None or not path.is_relative_to(root):
        raise ResumeError(
            f"{rd.record_path}: {field} {value!r} is not a file in the run directory "
            f"{root}; drop --resume and start over with --force"
        )
    return path


def restore(rd: RunDir, entry: dict[str, Any], ctx: Context, where: str) -> Artifact | None:
    """Rebuild a finished step's artifact from its files (for --resume)."""
    if not entry.get("path"):
        return None
    path = inside(rd, entry["path"], f"{where}.path")
    extra = [
        inside(rd, p, f"{where}.extra_files.{i}")
        for i, p in enumerate(entry.get("extra_files") or [])
    ]
    companions = [
        inside(rd, p, f"{where}.companions.{i}")
        for i, p in enumerate(entry.get("companions") or [])
    ]
    details = dict(entry.get("details") or {})
    handoffs = {  # files a later step loads: only ever inside the run directory
        k: inside(rd, p, f"{where}.handoffs.{k}") for k, p in (entry.get("handoffs") or {}).items()
    }
    if not all(p.is_file() for p in [path, *extra, *companions, *handoffs.values()]):
        return None
    module, rebuild = None, None
    if entry["format"] == "torch" and path.suffix == ".pt2":  # quantized torch graphs
        from modelpress.sources.models import load_exported

        module = load_exported(path)
    elif entry["format"] == "torch":  # a modelpress checkpoint (distilled, pruned)
        from modelpress.engine.context import rebuild_info
        from modelpress.sources import models

        # the step wrote it, from a model this recipe names (or trusts): the same trust
        spec = models.inspect_source(str(path), trust=ctx.recipe.code_trust())
        module, rebuild = models.build(spec), rebuild_info(spec)
    ctx.claim(path, entry["step"])
    transform = entry.get("input_transform")
    specs = ctx.input_specs
    if transform:
        from modelpress.runtimes.adapt import pixel_specs

        specs = pixel_specs(specs)
    return Artifact(
        entry["name"],
        entry["format"],
        specs,
        entry["precision"],
        path,
        entry.get("parents") or ([entry["parent"]] if entry.get("parent") else []),
        entry["step"],
        module,
        extra,
        companions,
        details=details,
        handoffs=handoffs,
        rebuild=rebuild,
        input_transform=transform,
    )
