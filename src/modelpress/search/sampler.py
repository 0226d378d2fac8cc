"""Which pipelines to try when the space holds more than ``max_trials``: Optuna's multi-objective
TPE (accuracy lost, latency, size; seeded), told each trial's measured objectives and its
constraints (≤ 0 when met: Optuna's convention), so it samples where feasible candidates lie.

The cheapest pipelines (those that train nothing) are enqueued first, so a feasible answer
comes early; a proposal that names a pipeline already tried (the same node id: the same
config) is told its earlier result and not run again.
"""

from __future__ import annotations

import json
from typing import Any

from modelpress.search.space import ORDER, Pipeline, options

MAX_REPEATS = 200  # proposals in a row that name pipelines already tried: the space is spent


def _key(choice: dict[str, Any]) -> str:
    return json.dumps(choice, sort_keys=True, default=str)


def constraints(
    point: dict[str, float], entry: dict[str, Any], targets: dict[str, Any]
) -> dict[str, float]:
    """Optuna's constraints: one value per target, ≤ 0 when met."""
    out = {}
    if targets.get("max_accuracy_drop") is not None:
        out["max_accuracy_drop"] = point["loss_pt"] - targets["max_accuracy_drop"]
    if targets.get("max_size_mb") is not None:
        out["max_size_mb"] = point["size_mb"] - targets["max_size_mb"]
    if targets.get("max_latency_ms") is not None:
        out["max_latency_ms"] = point["latency_ms"] - targets["max_latency_ms"]
    if targets.get("min_speedup") is not None:
        out["min_speedup"] = targets["min_speedup"] - float(entry.get("speedup") or 0.0)
    return out


class TPEProposer:
    def __init__(
        self,
        space: dict[str, dict[str, list[Any]]],
        every: list[Pipeline],
        targets: dict[str, Any],
        warm: int,
        seed: int = 0,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.targets = targets
        self.kinds = [k for k in ORDER if k in space]
        self.opts = {k: options(space[k], k) for k in self.kinds}
        self.by_choice = {_key(p.choice): p for p in every}
        self.tried: dict[str, tuple[list[float], dict[str, float]] | None] = {}  # id → told
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(warm, 5))
        self.study = optuna.create_study(directions=["minimize"] * 3, sampler=sampler)
        for pipe in [p for p in every if p.trained == 0][:warm]:  # a feasible answer early
            self.study.enqueue_trial(self._params(pipe))

    def _params(self, pipe: Pipeline) -> dict[str, str]:
        return {k: str(self.opts[k].index(pipe.choice.get(k))) for k in self.kinds}

    def propose(self) -> tuple[Any, Pipeline] | None:
        """(an Optuna trial, the pipeline to run), or None when the space is spent."""
        for _ in range(MAX_REPEATS):
            t = self.study.ask()
            choice = {
                k: self.opts[k][int(t.suggest_categorical(k, [str(i) for i in range(len(o))]))]
                for k, o in self.opts.items()
            }
            pipe = self.by_choice.get(_key(choice))
            if pipe is not None and pipe.id not in self.tried:
                return t, pipe
            told = self.tried.get(pipe.id) if pipe is not None else None
            if told is None:  # the baseline alone, or a pipeline that failed: nothing to learn
                self.study.tell(t, state=self.optuna.trial.TrialState.FAIL)
            else:
                self._constrain(t, told[1])
                self.study.tell(t, told[0])
        return None

    def tell(self, t: Any, pipe: Pipeline, point: dict[str, float] | None, entry: dict) -> None:
        if point is None:
            self.tried[pipe.id] = None
            self.study.tell(t, state=self.optuna.trial.TrialState.FAIL)
            return
        values = [point["loss_pt"], point["latency_ms"], point["size_mb"]]
        c = constraints(point, entry, self.targets)
        self._constrain(t, c)
        t.set_user_attr("pipeline", pipe.id)
        self.study.tell(t, values)
        self.tried[pipe.id] = (values, c)

    @staticmethod
    def _constrain(t: Any, values: dict[str, float]) -> None:
        for name, value in values.items():
            t.set_constraint(name, value)
