"""The search's conclusion: the front over the side-by-side timings, the recommendation by
the preferred objectives, and its pipeline written out as a recipe (best-recipe.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelpress.core.recipe import build_recipe, dump_recipe
from modelpress.search import front as pareto
from modelpress.search.journal import BEST_RECIPE

PREFER = ("latency_ms", "size_mb", "loss_pt")


class ConclusionMixin:
    """``Search``: the front, the recommendation and its recipe."""

    def _conclude(
        self, runner: Any, record: dict[str, Any], started: float, note: str
    ) -> dict[str, Any]:
        from modelpress.evaluate.targets import candidate, check

        targets = {k: v for k, v in self.settings.targets.items() if v is not None}
        # only what is measured ok, the baseline included (a baseline at chance is collapsed)
        entries = [e for e in [record["baseline"], *record["artifacts"]] if candidate(e)]
        candidates = []
        for e in entries:
            p = pareto.point(e)
            if p is None:
                continue
            results = check(e, targets)
            candidates.append((e, p, results, all(r["met"] for r in results.values())))
        feasible = [c for c in candidates if c[3]]
        # an artifact timed slower than its FP32 sibling side by side is not on the front: its
        # separate benchmark said otherwise, the race is the better measurement
        from modelpress.evaluate.versus_fp32 import set_aside

        aside = {id(e) for e in set_aside([c[0] for c in feasible])}
        idx = pareto.pareto(
            [[c[1][k] for k in pareto.OBJECTIVES] for c in feasible if id(c[0]) not in aside]
        )
        feasible_front = [c for c in feasible if id(c[0]) not in aside]
        on_front = [feasible_front[i] for i in idx]
        names = {c[0]["name"] for c in on_front}
        for trial in self.trials:
            trial.on_front = trial.candidate in names
            match = next((c for c in candidates if c[0]["name"] == trial.candidate), None)
            if match is not None:
                trial.feasible, trial.misses = match[3], pareto.misses(match[2])
        chosen = self._recommend(record, feasible)
        result: dict[str, Any] = {
            "seconds": round(self.clock() - started, 1),
            "candidates": len(candidates),
            "feasible": len(feasible),
            "front": [
                {"name": c[0]["name"], **c[1], "node": _node_of(record, c[0]["name"])}
                for c in sorted(on_front, key=lambda c: c[1]["latency_ms"])
            ],
            "recommendation": None,
            "least_violating": [],
        }
        if chosen is not None:
            entry, why = chosen
            path = self._save_recipe(runner, record, entry["name"])
            result["recommendation"] = {
                "name": entry["name"],
                "path": entry.get("path"),
                "node": _node_of(record, entry["name"]),
                "why": why,
                **(pareto.point(entry) or {}),
                "recipe": str(path) if path else None,
                # off the front when the side-by-side race overturned the separate benchmarks
                "on_front": entry["name"] in names,
            }
        else:
            worst = sorted(candidates, key=lambda c: (pareto.shortfall(c[2]), c[1]["latency_ms"]))
            result["least_violating"] = [
                {"name": c[0]["name"], **c[1], "misses": pareto.misses(c[2])} for c in worst[:5]
            ]
        return result

    def _recommend(
        self, record: dict[str, Any], feasible: list[tuple]
    ) -> tuple[dict[str, Any], str] | None:
        if not feasible:
            return None
        prefer = [k for k in self.settings.prefer if k in PREFER] or ["latency_ms"]
        rec = record.get("recommendation") or {}
        by_name = {c[0]["name"]: c for c in feasible}
        if prefer[0] == "latency_ms" and rec.get("met") and rec.get("name") in by_name:
            return by_name[rec["name"]][0], rec["why"]
        best = min(feasible, key=lambda c: tuple(c[1][k] for k in prefer))
        return best[0], f"best by {', then '.join(prefer)} among the feasible candidates"

    def _save_recipe(self, runner: Any, record: dict[str, Any], name: str) -> Path | None:
        """The winning pipeline as a plain recipe (``modelpress run`` reproduces it)."""
        steps = {s.get("id"): s for s in record["steps"]}
        node = _node_of(record, name)
        chain: list[dict[str, Any]] = []
        while node and node != "baseline" and node in steps:
            chain.append(steps[node]["config"])
            node = (steps[node].get("from") or ["baseline"])[0]
        base = self.recipe.to_dict()
        base.pop("out", None)
        base.pop("optimize", None)
        base["compare"] = []
        base["steps"] = list(reversed(chain))
        base["targets"] = {k: v for k, v in self.settings.targets.items() if v is not None}
        path = self.out / BEST_RECIPE
        dump_recipe(build_recipe(base, str(path)), path)
        return path

    # ------------------------------------------------------------------ journal


def _node_of(record: dict[str, Any], name: str) -> str | None:
    if name == "baseline":
        return "baseline"
    for s in record.get("steps") or []:
        if (s.get("artifact") or {}).get("name") == name:
            return s.get("id")
    return None
