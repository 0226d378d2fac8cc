"""The run's record: one JSON document, rebuilt from the measurements after every node
(``finalize``), and the summary of each node it lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelpress.core import environment
from modelpress.core.rundir import stable_hash
from modelpress.evaluate import targets, techniques
from modelpress.tasks import get_task

if TYPE_CHECKING:
    from modelpress.core.recipe import Recipe
    from modelpress.engine.context import Context

SCHEMA = 2  # 2: nodes with keys and parents; every field of schema 1 kept as it was
# Statuses of a node whose artifact was made and measured: reused on --resume, and its
# children run from it (a collapsed one is shown, never recommended: evaluate/targets.py)
MEASURED = ("ok", "degraded", "collapsed")


def new_record(recipe: Recipe, name: str, ctx: Context, identity: dict[str, Any]) -> dict[str, Any]:
    """A run's record before its baseline is measured."""
    return {
        "schema": SCHEMA,
        "name": recipe.name or name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": ctx.task.name,
        "primary_metric": ctx.task.primary,
        "model": {
            "source": recipe.model,
            "weights": recipe.weights,
            "inputs": [s.describe() for s in ctx.input_specs],
        },
        "data": ctx.data.summary(),
        "identity": identity,
        "identity_hash": stable_hash(identity),
        "baseline": None,
        "steps": [],
        "artifacts": [],
        "targets": {},
        "recommendation": None,
        "head_to_head": None,
        "environment": environment.collect(ctx.threads),
    }


def finalize(record: dict[str, Any], recipe: Recipe) -> None:
    """Every entry's deltas and targets, the recommendation, the decisions, the techniques
    table: all read again from the measurements, after every node and at the end."""
    baseline = record["baseline"]
    primary = get_task(record["task"]).primary
    targets.annotate(baseline, baseline, primary)
    for entry in record["artifacts"]:
        targets.annotate(entry, baseline, primary)
    wanted = recipe.targets.model_dump()
    for entry in [baseline, *record["artifacts"]]:
        entry["targets"] = targets.check(entry, wanted)
    race = record.get("head_to_head")
    rec, results = targets.recommend(baseline, record["artifacts"], wanted, race)
    record["recommendation"], record["targets"] = rec, results
    record["decisions"] = targets.decisions(baseline, record["artifacts"], wanted, race)
    if recipe.compare:
        record["techniques"] = techniques.table(record, recipe.compare)


def node_summary(step: dict[str, Any]) -> dict[str, Any]:
    art = step.get("artifact") or {}
    return {
        "id": step.get("id"),
        "type": step.get("type"),
        "key": step.get("key"),
        "parents": step.get("from") or [],
        "status": step.get("status"),
        "reused": step.get("reused", False),
        "artifact": art.get("name"),
        **({"reran": step["reran"]} if step.get("reran") else {}),
    }
