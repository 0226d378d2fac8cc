"""The search's budget: the time it may take (``--budget``), the time a trial will likely
cost (the mean of its step types so far), and what a trial cannot meet before it runs."""

from __future__ import annotations

import re
from typing import Any

from modelpress.errors import ModelpressError
from modelpress.search.journal import Trial
from modelpress.search.space import TRAINED, Pipeline

MARGIN_PT = 0.5  # a trained parent losing more than bound + this is not exported further
SIZE_FACTOR = {"fp32": 1.0, "fp16": 0.5, "int8": 0.25, "int8-dynamic": 0.25}
SIZE_SLACK = 1.15  # predicted sizes are rough: skip only beyond this factor of the bound
RESERVE_FRACTION, RESERVE_MIN_S = 0.08, 15.0


class OptimizeError(ModelpressError):
    """A search that cannot run as asked."""


def parse_budget(text: str | float | int | None, where: str = "--budget") -> float | None:
    """``90s``, ``20m``, ``1h``, ``1h30m`` → seconds."""
    if text is None:
        return None
    if isinstance(text, int | float):
        raise OptimizeError(f"{where}: {text}: give a unit, e.g. 90s, 20m or 1h")
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*", text
    )
    if not parts or not any(parts.groups()):
        raise OptimizeError(f"{where}: {text!r}: give a duration such as 90s, 20m, 1h or 1h30m")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise OptimizeError(f"{where}: {text!r}: give a duration above zero")
    return seconds


class Costs:
    """The mean seconds of each step type measured so far (reused nodes left out)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[float]] = {}

    def add(self, kind: str, seconds: float) -> None:
        self.seen.setdefault(kind, []).append(seconds)

    def estimate(self, kind: str) -> float | None:
        got = self.seen.get(kind)
        return sum(got) / len(got) if got else None


class BudgetMixin:
    """``Search``: whether a trial fits what is left of the budget and the targets."""

    def _before(self, runner: Any, trial: Trial, deadline: float | None) -> str:
        """Why a trial is not started ('' to start it): a failed ancestor, a bound it cannot
        meet, or the time left."""
        pipe = trial.pipeline
        broken = [n.id for n in pipe.nodes if n.id in self.failed]
        if broken:
            what = "collapsed" if self.failed[broken[0]].startswith("collapsed") else "failed"
            return f"starts from {broken[0]}, which {what}"
        why = self._cannot(runner, pipe)
        new = [n for n in pipe.nodes if runner.artifact(n.id) is None]
        if why or deadline is None or not new:
            return why
        left = deadline - self.clock()
        known = [self.costs.estimate(n.step["type"]) for n in new]
        expected = sum(k for k in known if k is not None)
        if left <= 0 or expected > left:
            return (
                f"would not fit the time left ({max(left, 0):.0f} s; its {len(new)} new "
                f"node(s) take about {expected:.0f} s)"
            )
        return ""

    def _cannot(self, runner: Any, pipe: Pipeline) -> str:
        """Why a trial cannot meet the constraints, known before building it ('' if none)."""
        from modelpress.evaluate.targets import loss_pt

        bound = self.settings.targets.get("max_accuracy_drop")
        for node in pipe.nodes[:-1]:  # a trained parent already too far off
            entry = self._entry(runner, node.id)
            lost = loss_pt(entry) if entry else None
            trained = node.step["type"] in TRAINED
            if trained and bound is not None and lost is not None and lost > bound + MARGIN_PT:
                return (
                    f"its parent {node.id} already loses {lost:.2f} pt (bound {bound} + "
                    f"margin {MARGIN_PT})"
                )
        limit = self.settings.targets.get("max_size_mb")
        last = pipe.nodes[-1]
        parent = runner.artifact(last.parent)
        if parent is None and len(pipe.nodes) > 1 and pipe.nodes[-2].step["type"] == "export":
            # its FP32 ONNX not built (skipped as too big itself): predict from what it exports
            parent = runner.artifact(pipe.nodes[-2].parent)
        if limit is None or last.step["type"] != "export" or parent is None:
            return ""
        parent_entry = runner.entries.get(parent.name) or {}
        size = parent_entry.get("size_bytes")
        factor = SIZE_FACTOR.get(last.step.get("precision", "fp32"))
        if size is None or factor is None or parent_entry.get("precision") not in ("fp32", None):
            return ""
        predicted = size * factor / 1e6
        if predicted > limit * SIZE_SLACK:
            return f"cannot meet max_size_mb {limit}: about {predicted:.3g} MB from its parent"
        return ""

    # ------------------------------------------------------------------ the answer
