"""Node keys: a node's folder and its identity on --resume (Olive's lesson: a key that misses
an input gives two models one cache entry). The baseline's: the recipe's identity, what it
reads, the versions that change results; a step's: its parents' keys, its config, what it reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpress.core.graph import BASELINE
from modelpress.core.registry import describe_artifact
from modelpress.core.rundir import stable_hash
from modelpress.errors import ModelpressError
from modelpress.sources.fingerprint import sources_digest

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
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


def node_inputs(
    index: int, config: StepConfig, recipe: Recipe, made: dict[str, Artifact]
) -> list[str]:
    """The node ids a step starts from: its ``from:``, else the newest node before it in the
    recipe whose artifact it accepts (the baseline last). A ModelpressError says why none."""
    if config.sources is None:
        earlier = [s.ref for s in recipe.steps[:index]]
        for ref in reversed([BASELINE, *earlier]):
            art = made.get(ref)
            if art is not None and config.accepts(art):
                return [ref]
        raise ModelpressError(
            f"{config.display_name}: needs {config.wants()}, and the run has none"
        )
    for ref in config.sources:
        art = made.get(ref)
        if art is None:
            raise ModelpressError(
                f"{config.display_name}: starts from '{ref}', which failed; fix that step first"
            )
        if not config.accepts(art):
            raise ModelpressError(
                f"{config.display_name}: `{config.type}` takes {config.wants()}; "
                f"{describe_artifact(art)} (from: {ref})"
            )
    return list(config.sources)
