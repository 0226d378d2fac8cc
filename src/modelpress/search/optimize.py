"""``modelpress optimize``: whole pipelines searched under a budget, every candidate measured.

One run directory holds everything: the pipeline runner's record (every node measured in its
own runtime, keyed, reusable) and ``optimize.json``, the search's journal (settings, every
trial with its status and why, the front, the recommendation), rewritten atomically after each
trial. The runner grows one step graph as trials go: a trial's nodes that an earlier trial
built are shared, so nothing is trained twice; ``--resume`` replays the trials in the same
order and every finished node is reused from its files (the log says so).

The time budget:
- cheapest trials first (those that train nothing, then fewer training steps);
- a trial starts only if the time its new nodes are expected to take (the mean time of each
  step type measured so far in this search) fits in what is left less a reserve for the end
  (the races between finalists and the reports);
- a training step past the budget stops at its next epoch (its checkpoint kept);
- a trial whose candidate cannot meet ``max_size_mb`` (an export's size predicted from its
  parent's) is skipped unbuilt, and a branch whose trained parent already loses more than the
  accuracy bound plus a margin is not exported further.
The front is the Pareto front (accuracy lost, latency, size) of the feasible candidates; the
recommendation is the runner's (the fastest meeting every constraint, finalists raced side by
side) unless ``prefer`` puts size or accuracy first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe
from modelpress.core.rundir import check_output, clear_run, output_lock
from modelpress.errors import ResumeError
from modelpress.search import front as pareto
from modelpress.search.budget import (
    MARGIN_PT,
    RESERVE_FRACTION,
    RESERVE_MIN_S,
    BudgetMixin,
    Costs,
    OptimizeError,
    parse_budget,
)
from modelpress.search.conclusion import PREFER, ConclusionMixin
from modelpress.search.drivers import DriversMixin, dead_end
from modelpress.search.journal import (
    BEST_RECIPE,
    JOURNAL,
    JournalMixin,
    Settings,
    Trial,
    read_journal,
)
from modelpress.search.space import pipelines

__all__ = [
    "BEST_RECIPE", "JOURNAL", "PREFER", "Costs", "OptimizeError", "Search", "Settings", "Trial",
    "parse_budget", "read_journal",
]  # fmt: skip


class Search(DriversMixin, BudgetMixin, ConclusionMixin, JournalMixin):
    def __init__(
        self,
        recipe: Recipe,
        settings: Settings,
        out: Path,
        *,
        resume: bool = False,
        force: bool = False,
        observer: Observer | None = None,
        on_trial: Any = None,
        clock: Any = time.monotonic,
        worker_class: Any = None,
    ) -> None:
        self.recipe, self.settings, self.out = recipe, settings, out
        self.resume, self.force = resume, force
        self.observer = observer or Observer()
        self._on_trial = on_trial or (lambda trial, total: None)
        self.clock = clock
        self.worker_class = worker_class  # parallel: the Ray actor class building nodes
        self._entries: dict[str, dict[str, Any]] = {}
        self.proposer: Any = None  # TPE when the space is larger than max_trials
        self.asked: dict[int, Any] = {}  # trial index → its Optuna trial, until told
        self.costs = Costs()
        self.trials: list[Trial] = []
        self.failed: dict[str, str] = {}  # node id → why it failed

    def on_trial(self, trial: Trial, total: int) -> None:
        """A trial ended: the provisional front over the trials so far (feasible, measured
        separately; the final front comes after the side-by-side timing), then the caller."""
        from modelpress.evaluate.targets import candidate, check

        targets = {k: v for k, v in self.settings.targets.items() if v is not None}
        done = [t for t in self.trials if t.status == "done" and t.point is not None]
        feasible = []
        for t in done:
            entry = self._entries.get(t.candidate or "") or {}
            t.feasible = (
                bool(entry)
                and candidate(entry)
                and all(r["met"] for r in check(entry, targets).values())
            )
            if t.feasible:
                feasible.append(t)
        keep = pareto.pareto([[t.point[k] for k in pareto.OBJECTIVES] for t in feasible])
        front = {id(feasible[i]) for i in keep}
        for t in self.trials:
            t.on_front = id(t) in front
        self._on_trial(trial, total)

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> Any:
        from modelpress.engine.pipeline import Runner

        out = self.out
        check_output(out, "--out", folder=True)
        journal = out / JOURNAL
        if not self.resume and not self.force and journal.exists():
            raise ResumeError(
                f"{out} already holds a search; pass --resume to continue it, --force to start "
                "over, or choose another --out"
            )
        if not self.force and not journal.exists() and (out / "record.json").exists():
            raise ResumeError(
                f"{out} already holds a run that is not a search; pass --force to replace it, "
                "or choose another --out"
            )
        if self.resume and journal.exists():
            before = read_journal(journal) or {}
            if before.get("settings", {}).get("space") not in (
                None,
                self.settings.space,
            ):
                raise ResumeError(
                    f"{journal}: --resume on a search over another space; drop --resume and "
                    "start over with --force, or pick another --out"
                )
        if self.force and not self.resume:
            clear_run(out, JOURNAL, BEST_RECIPE)
        targets = {k: v for k, v in self.settings.targets.items() if v is not None}
        recipe = self.recipe.model_copy(
            update={
                "out": str(out.resolve()),
                "steps": [],
                "targets": self.recipe.targets.model_copy(update=targets),
                "compare": [],
            }
        )
        return Runner(recipe, out, self.observer, self.resume)

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """The search, holding ``out``: a second run into it stops with the first's PID."""
        check_output(self.out, "--out", folder=True)
        with output_lock(self.out):
            return self._run()

    def _run(self) -> dict[str, Any]:
        started = self.clock()
        runner = self._prepare()
        runner.start(self.settings.coarse)
        self._entries = runner.entries  # by artifact name: the provisional front reads them
        self._coarse_again(runner)
        runner.ctx.node_names = True  # artifacts named by their node, as the workers name them
        every = pipelines(self.settings.space)
        chosen = every
        note = ""
        parallel = self.settings.workers > 1 or bool(self.settings.ray_address)
        limit = self.settings.max_trials
        sampled = limit is not None and len(every) > limit
        self.trials = [] if sampled else [Trial(i + 1, p) for i, p in enumerate(chosen)]
        budget = self.settings.time_s
        reserve = max(RESERVE_MIN_S, RESERVE_FRACTION * budget) if budget else 0.0
        deadline = started + budget - reserve if budget else None
        self._write(runner, started, note)
        if parallel and sampled:
            assert limit is not None
            note = self._tpe_note(len(every), limit)
            self.proposer = self._tpe(every, limit)
            self._parallel(runner, deadline, started, note, self.proposer, limit)
        elif parallel:
            self._parallel(runner, deadline, started, note)
        elif sampled:
            assert limit is not None
            note = self._sampled(runner, every, limit, deadline, started)
        else:
            for trial in self.trials:
                self._trial(runner, trial, deadline)
                self._write(runner, started, note)
                self.on_trial(trial, len(self.trials))
        runner.ctx.deadline = None
        if self.settings.coarse is not None:
            self._fine(runner)
        self.observer.event("optimize", "timing the finalists side by side")
        record = runner.finish()
        result = self._conclude(runner, record, started, note)
        self._write(runner, started, note, result)
        from modelpress.search.report import write_report

        write_report(self.out, read_journal(self.out / JOURNAL) or {}, record)
        return result

    @staticmethod
    def _coarse_again(runner: Any) -> None:
        """A resumed coarse search reuses entries a fine pass changed: back to their coarse
        figures, so the search sees what it saw the first time (the fine pass redoes the rest)."""
        changed = False
        for e in [runner.record["baseline"], *runner.record["artifacts"]]:
            back: dict[str, Any] = {"accuracy_on": None}
            if "metrics_coarse" in e:
                back |= {"metrics": e["metrics_coarse"], "metrics_coarse": None}
            if e.get("status") == "coarse":
                back["status"] = "ok"
            changed = changed or len(back) > 1
            runner.rescore(e, **back)
        if changed:
            runner.finalize()  # the deltas again, from the coarse figures

    def _fine(self, runner: Any) -> None:
        """The second pass of a coarse search: the candidates near the front — meeting every
        constraint but accuracy, and within the accuracy bound + margin on the coarse pass —
        and the baseline evaluated on the whole validation split; the rest stay ``coarse`` and
        out of the front and the recommendation. Both figures are kept."""
        from modelpress.engine.measure.evaluation import evaluate_split
        from modelpress.evaluate.targets import check, loss_pt

        ctx, full = runner.ctx, runner.full_validation
        coarse_n = len(ctx.data.validation)
        if len(full) <= coarse_n:
            return
        bound = self.settings.targets.get("max_accuracy_drop")
        others = {
            k: v
            for k, v in self.settings.targets.items()
            if v is not None and k != "max_accuracy_drop"
        }
        record = runner.record
        entries = [record["baseline"], *record["artifacts"]]
        near = [record["baseline"]]
        for e in record["artifacts"]:
            lost = loss_pt(e)
            meets = all(r["met"] for r in check(e, others).values())
            if (
                e.get("status") == "ok"
                and meets
                and lost is not None
                and (bound is None or lost <= bound + MARGIN_PT)
            ):
                near.append(e)
        self.observer.event(
            "optimize",
            f"evaluating {len(near) - 1} candidates near the front and the baseline on all "
            f"{len(full)} validation samples (the search used {coarse_n})",
        )
        live = runner.live()
        reference = None
        for e in near:  # the baseline first: a fidelity task scores the others against it
            ref = reference if ctx.task.metrics_against_baseline else None
            evaluated = evaluate_split(ctx, live[e["name"]], full, reference=ref)
            if e is record["baseline"]:
                reference = evaluated.outputs
            runner.rescore(
                e,
                metrics_coarse=e["metrics"],
                metrics=evaluated.metrics,
                accuracy_on=f"all {len(full)} validation samples",
            )
        chosen = {id(e) for e in near}
        for e in entries:
            if id(e) not in chosen and e.get("status") == "ok":
                # not near the front: never recommended
                runner.rescore(
                    e, accuracy_on=f"the first {coarse_n} validation samples only", status="coarse"
                )
        runner.finalize()

    def _trial(self, runner: Any, trial: Trial, deadline: float | None) -> None:
        from modelpress.core.registry import config_class

        pipe = trial.pipeline
        new = [n for n in pipe.nodes if runner.artifact(n.id) is None]
        why = self._before(runner, trial, deadline)
        if why:
            trial.status, trial.reason = "skipped", why
            return
        # a training step checks time.monotonic(): the deadline moved into that clock
        runner.ctx.deadline = (
            None if deadline is None else time.monotonic() + (deadline - self.clock())
        )
        start = self.clock()
        reused = True
        for node in pipe.nodes:
            if runner.artifact(node.id) is not None:
                continue
            cls = config_class(node.step["type"])
            assert cls is not None
            entry = runner.add_step(cls.model_validate(node.step))
            self._coarse_again(runner)
            if not entry.get("reused"):
                reused = False
                self.costs.add(node.step["type"], float(entry.get("seconds") or 0.0))
            why = dead_end(entry, runner.artifact(node.id) is not None)
            if why:
                self.failed[node.id] = why
                trial.status, trial.reason = "failed", f"{node.id}: {why}"
                trial.seconds = self.clock() - start
                return
        trial.seconds, trial.reused = self.clock() - start, reused and bool(new)
        self._done(runner, trial)

    @staticmethod
    def _entry(runner: Any, node: str) -> dict[str, Any]:
        """The record entry of a built node's artifact ({} when the node was not built)."""
        art = runner.artifact(node)
        return (runner.entries.get(art.name) if art is not None else None) or {}

    def _done(self, runner: Any, trial: Trial) -> None:
        """Every node of the trial built: its candidate and objectives."""
        entry = self._entry(runner, trial.pipeline.id)
        trial.status, trial.candidate = "done", runner.artifact(trial.pipeline.id).name
        trial.point = pareto.point(entry)
        if entry.get("status") == "degraded":
            trial.reason = "degraded against its parent"
