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

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe, build_recipe, dump_recipe
from modelpress.core.rundir import check_output, output_lock, write_json_atomic
from modelpress.errors import ModelpressError, ResumeError, first_line
from modelpress.search import front as pareto
from modelpress.search.space import TRAINED, Pipeline, pipelines

JOURNAL = "optimize.json"
BEST_RECIPE = "best-recipe.yaml"
PREFER = ("latency_ms", "size_mb", "loss_pt")
MARGIN_PT = 0.5  # a trained parent losing more than bound + this is not exported further
SIZE_FACTOR = {"fp32": 1.0, "fp16": 0.5, "int8": 0.25, "int8-dynamic": 0.25}
SIZE_SLACK = 1.15  # predicted sizes are rough: skip only beyond this factor of the bound
RESERVE_FRACTION, RESERVE_MIN_S = 0.08, 15.0


class OptimizeError(ModelpressError):
    """A search that cannot run as asked."""


def read_journal(path: Path) -> dict[str, Any] | None:
    """The search's journal, or None; a damaged one is a one-line error."""
    import json

    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ResumeError(
            f"{path}: not a readable search journal ({first_line(e)}); drop --resume and pass "
            "--force to start over"
        ) from None
    return doc if isinstance(doc, dict) else None


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


@dataclass
class Settings:
    targets: dict[str, float | None]
    space: dict[str, dict[str, list[Any]]]
    time_s: float | None = None
    max_trials: int | None = None
    prefer: list[str] = field(default_factory=lambda: ["latency_ms", "size_mb"])
    workers: int = 1  # above 1, or with ray_address: trials on Ray
    ray_address: str | None = None
    coarse: int | None = None  # validation samples of the first pass (None: all, one pass)

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "space": self.space,
            "time_s": self.time_s,
            "max_trials": self.max_trials,
            "prefer": self.prefer,
            "workers": self.workers,
            "ray_address": self.ray_address,
            "coarse": self.coarse,
        }


@dataclass
class Trial:
    index: int
    pipeline: Pipeline
    status: str = "pending"  # done | failed | skipped
    reason: str = ""
    seconds: float = 0.0
    reused: bool = False
    candidate: str | None = None
    point: dict[str, float] | None = None
    feasible: bool = False
    misses: list[str] = field(default_factory=list)
    on_front: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.pipeline.id,
            "pipeline": self.pipeline.describe(),
            "nodes": [n.id for n in self.pipeline.nodes],
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "reused": self.reused,
            "candidate": self.candidate,
            "point": self.point,
            "feasible": self.feasible,
            "misses": self.misses,
            "on_front": self.on_front,
        }


class Costs:
    """The mean seconds of each step type measured so far (reused nodes left out)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[float]] = {}

    def add(self, kind: str, seconds: float) -> None:
        self.seen.setdefault(kind, []).append(seconds)

    def estimate(self, kind: str) -> float | None:
        got = self.seen.get(kind)
        return sum(got) / len(got) if got else None


class Search:
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
            for name in ("record.json", JOURNAL, BEST_RECIPE):
                (out / name).unlink(missing_ok=True)
            for folder in ("nodes", "steps", "artifacts", "plots"):
                shutil.rmtree(out / folder, ignore_errors=True)
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

    def _sampled(
        self, runner: Any, every: list[Pipeline], limit: int, deadline: float | None, started: float
    ) -> str:
        """``limit`` trials proposed by Optuna's TPE (``sampler.py``), told as they finish."""
        note = self._tpe_note(len(every), limit)
        self.proposer = proposer = self._tpe(every, limit)
        while len(self.trials) < limit:
            got = proposer.propose()
            if got is None:
                note += "; every pipeline of the space was tried"
                break
            trial = Trial(len(self.trials) + 1, got[1])
            self.asked[trial.index] = got[0]
            self.trials.append(trial)
            self._trial(runner, trial, deadline)
            self._told(runner, trial)
            self._write(runner, started, note)
            self.on_trial(trial, limit)
            if trial.status == "skipped" and "time left" in trial.reason:
                break  # the budget is spent: what is left would not fit either
        return note

    @staticmethod
    def _coarse_again(runner: Any) -> None:
        """A resumed coarse search reuses entries a fine pass changed: back to their coarse
        figures, so the search sees what it saw the first time (the fine pass redoes the rest)."""
        changed = False
        for e in [runner.record.get("baseline") or {}, *runner.record.get("artifacts", [])]:
            if "metrics_coarse" in e:
                e["metrics"] = e.pop("metrics_coarse")
                changed = True
            if e.get("status") == "coarse":
                e["status"] = "ok"
                changed = True
            e.pop("accuracy_on", None)
        if changed:
            runner._finalize(runner.record)  # the deltas again, from the coarse figures

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
        live = {a.name: a for a in [runner.baseline, *runner.produced]}
        reference = None
        for e in near:  # the baseline first: a fidelity task scores the others against it
            ref = reference if ctx.task.metrics_against_baseline else None
            evaluated = evaluate_split(ctx, live[e["name"]], full, reference=ref)
            if e is record["baseline"]:
                reference = evaluated.outputs
            e["metrics_coarse"] = e["metrics"]
            e["metrics"] = evaluated.metrics
            e["accuracy_on"] = f"all {len(full)} validation samples"
        chosen = {id(e) for e in near}
        for e in entries:
            if id(e) not in chosen and e.get("status") == "ok":
                e["accuracy_on"] = f"the first {coarse_n} validation samples only"
                e["status"] = "coarse"  # not near the front: never recommended
        runner._finalize(record)

    @staticmethod
    def _tpe_note(pipelines_in_space: int, limit: int) -> str:
        return (
            f"{pipelines_in_space} pipelines in the space, {limit} tried: Optuna's "
            f"multi-objective TPE (seed 0), the {max(1, limit // 3)} cheapest first"
        )

    def _tpe(self, every: list[Pipeline], limit: int) -> Any:
        from modelpress.search.sampler import TPEProposer

        targets = {k: v for k, v in self.settings.targets.items() if v is not None}
        return TPEProposer(self.settings.space, every, targets, max(1, limit // 3))

    def _trial(self, runner: Any, trial: Trial, deadline: float | None) -> None:
        from modelpress.core.registry import config_class

        pipe = trial.pipeline
        new = [n for n in pipe.nodes if n.id not in runner.made]
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
            if node.id in runner.made:
                continue
            cls = config_class(node.step["type"])
            assert cls is not None
            entry = runner.add_step(cls.model_validate(node.step))
            self._coarse_again(runner)
            if not entry.get("reused"):
                reused = False
                self.costs.add(node.step["type"], float(entry.get("seconds") or 0.0))
            why = _dead_end(entry, node.id in runner.made)
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
        art = runner.made.get(node)
        return (runner.entries.get(art.name) if art is not None else None) or {}

    def _done(self, runner: Any, trial: Trial) -> None:
        """Every node of the trial built: its candidate and objectives."""
        entry = self._entry(runner, trial.pipeline.id)
        trial.status, trial.candidate = "done", runner.made[trial.pipeline.id].name
        trial.point = pareto.point(entry)
        if entry.get("status") == "degraded":
            trial.reason = "degraded against its parent"

    def _parallel(
        self,
        runner: Any,
        deadline: float | None,
        started: float,
        note: str,
        proposer: Any = None,
        limit: int | None = None,
    ) -> None:
        """Trials on Ray workers: every node whose parent is built goes to a free worker, in
        the trials' order (cheapest first); results are adopted as they come. With a
        ``proposer`` (TPE), a new trial is asked for whenever a worker would sit idle, up to
        ``limit``, and each is told its result as it settles."""
        from modelpress.core.registry import config_class
        from modelpress.engine.pipeline import MEASURED
        from modelpress.search.parallel import RayExecutor

        settings = self.settings
        recipe = runner.recipe.model_copy(update={"steps": []}).to_dict()
        recipe["trust_checkpoint_code"] = runner.recipe.trust_checkpoint_code  # the user's flag
        executor = RayExecutor(
            recipe,
            self.out,
            settings.workers if not settings.ray_address else max(settings.workers, 1),
            settings.ray_address,
            self.worker_class,
            settings.coarse,
        )
        chains: dict[str, list[dict[str, Any]]] = {}
        flying: set[str] = set()
        began: dict[int, float] = {}
        spent = False  # the proposer has nothing new, or the budget ran out
        try:
            while True:
                for trial in self.trials:  # those whose nodes others built: done already
                    if trial.status == "pending" and trial.index in began:
                        self._settle(runner, trial, began[trial.index])
                asked = False
                waiting = any(t.status == "pending" and t.index not in began for t in self.trials)
                room = len(self.trials) < (limit or 0)
                if proposer and room and not spent and executor.idle and not waiting:
                    got = proposer.propose()
                    if got is None:
                        spent = True
                    else:
                        trial = Trial(len(self.trials) + 1, got[1])
                        self.asked[trial.index] = got[0]
                        self.trials.append(trial)
                        asked = True
                for trial in self.trials:
                    if trial.status != "pending" or not executor.idle:
                        continue
                    pipe = trial.pipeline
                    if trial.index not in began:
                        why = self._before(runner, trial, deadline)
                        if why:
                            trial.status, trial.reason = "skipped", why
                            self._told(runner, trial)
                            spent = spent or "time left" in why
                            self._write(runner, started, note)
                            self.on_trial(trial, limit or len(self.trials))
                            continue
                        began[trial.index] = self.clock()
                    for i, node in enumerate(pipe.nodes):
                        if node.id in runner.made or node.id in flying:
                            continue
                        if node.parent != "baseline" and node.parent not in runner.made:
                            break  # its parent is being built
                        chains[node.id] = [n.step for n in pipe.nodes[: i + 1]]
                        wall = None if deadline is None else time.time() + deadline - self.clock()
                        executor.submit(chains[node.id], node, wall)
                        flying.add(node.id)
                        break
                if not flying:
                    if asked or any(
                        t.status == "pending" and t.index not in began for t in self.trials
                    ):
                        continue
                    break
                node, built = executor.wait()
                flying.discard(node.id)
                cls = config_class(node.step["type"])
                assert cls is not None
                defaults = {"id": node.id, "name": node.id, "type": node.step["type"]}
                entry = runner.adopt(
                    cls.model_validate(node.step),
                    {**defaults, "config": node.step, **built},
                    f"built by {built.get('built_by', 'a worker')}",
                )
                self._coarse_again(runner)
                if entry.get("status") in MEASURED and not entry.get("reused"):
                    self.costs.add(node.step["type"], float(entry.get("seconds") or 0.0))
                why = _dead_end(entry, node.id in runner.made)
                if why:
                    self.failed[node.id] = why
                for trial in self.trials:
                    if trial.status == "pending" and trial.index in began:
                        self._settle(runner, trial, began[trial.index])
                self._write(runner, started, note)
        finally:
            executor.close()
        for trial in self.trials:
            if trial.status == "pending":
                trial.status, trial.reason = "skipped", "not started"

    def _settle(self, runner: Any, trial: Trial, began: float) -> None:
        """A started trial whose nodes are all built (done) or one failed (failed)."""
        pipe = trial.pipeline
        broken = [n.id for n in pipe.nodes if n.id in self.failed]
        if broken:
            trial.status, trial.reason = "failed", f"{broken[0]}: {self.failed[broken[0]]}"
        elif all(n.id in runner.made for n in pipe.nodes):
            self._done(runner, trial)
        else:
            return
        trial.seconds = self.clock() - began
        self._told(runner, trial)
        self.on_trial(trial, self.settings.max_trials if self.proposer else len(self.trials))

    def _told(self, runner: Any, trial: Trial) -> None:
        """The proposer (TPE under --workers) learns how a trial it asked for ended."""
        asked = self.asked.pop(trial.index, None)
        if asked is None or self.proposer is None:
            return
        point = trial.point if trial.status == "done" else None
        self.proposer.tell(asked, trial.pipeline, point, self._entry(runner, trial.pipeline.id))

    def _before(self, runner: Any, trial: Trial, deadline: float | None) -> str:
        """Why a trial is not started ('' to start it): a failed ancestor, a bound it cannot
        meet, or the time left."""
        pipe = trial.pipeline
        broken = [n.id for n in pipe.nodes if n.id in self.failed]
        if broken:
            what = "collapsed" if self.failed[broken[0]].startswith("collapsed") else "failed"
            return f"starts from {broken[0]}, which {what}"
        why = self._cannot(runner, pipe)
        new = [n for n in pipe.nodes if n.id not in runner.made]
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
        parent = runner.made.get(last.parent)
        if parent is None and len(pipe.nodes) > 1 and pipe.nodes[-2].step["type"] == "export":
            # its FP32 ONNX not built (skipped as too big itself): predict from what it exports
            parent = runner.made.get(pipe.nodes[-2].parent)
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
    def _write(
        self, runner: Any, started: float, note: str, result: dict[str, Any] | None = None
    ) -> None:
        write_json_atomic(
            self.out / JOURNAL,
            {
                "settings": self.settings.to_dict(),
                "note": note,
                "elapsed_s": round(self.clock() - started, 1),
                "trials": [t.to_dict() for t in self.trials],
                "result": result,
            },
        )


def _dead_end(entry: dict[str, Any], built: bool) -> str | None:
    """Why a search builds nothing more on a node, or None: it failed, or it collapsed. A
    collapsed node is measured and shown, never a candidate, and what a search would make from
    it (an export, a fine-tune of a model at chance) is no candidate either: the budget goes to
    other branches, and trials through it are skipped ("starts from X, which collapsed")."""
    from modelpress.engine.pipeline import MEASURED

    if entry.get("status") == "collapsed":
        notes = (entry.get("artifact") or {}).get("notes") or []
        return next((str(n) for n in notes if str(n).startswith("collapsed")), "collapsed")
    if entry.get("status") not in MEASURED or not built:
        return entry.get("error") or "failed"
    return None


def _node_of(record: dict[str, Any], name: str) -> str | None:
    if name == "baseline":
        return "baseline"
    for s in record.get("steps") or []:
        if (s.get("artifact") or {}).get("name") == name:
            return s.get("id")
    return None
