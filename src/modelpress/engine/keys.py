"""Node keys: a node's folder and its identity on --resume (Olive's lesson: a key that misses
an input gives two models one cache entry). The baseline's: the recipe's identity, what it
reads, the versions that change results; a step's: its parents' keys, its config, what it reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpress.core.rundir import stable_hash
from modelpress.sources.fingerprint import sources_digest

if TYPE_CHECKING:
    from modelpress.core.recipe import Recipe
    from modelpress.core.registry import StepConfig


def baseline_key(identity: dict[str, Any], reads: Any, versions: Any) -> str:
    return stable_hash({"identity": identity, "reads": reads, "versions": versions})


def node_key(config: StepConfig, parent_keys: list[str], recipe: Recipe) -> str:
    """A step's node key: its parents' keys, its config's computation, the content of the
    files it reads itself (a teacher, a student) and the targets it reads."""
    reads = sources_digest(
        getattr(config, k, None)
        for k in ("teacher", "student", "teacher_weights", "student_weights")
    )
    targets = recipe.targets.model_dump()
    return stable_hash(
        {
            "parents": parent_keys,
            "config": config.computation(),
            "reads": reads,
            "targets": {k: targets[k] for k in config.reads_targets},
        }
    )
