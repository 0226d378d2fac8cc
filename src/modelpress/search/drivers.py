"""How trials are driven: in order, proposed by Optuna's TPE (a space larger than
``max_trials``), or on Ray workers whose results are adopted as they come."""

from __future__ import annotations

import time
from typing import Any

from modelpress.search.journal import Trial
from modelpress.search.space import Pipeline


class DriversMixin:
    """``Search``: the serial-with-TPE and the parallel drivers."""

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
    def _tpe_note(pipelines_in_space: int, limit: int) -> str:
        return (
            f"{pipelines_in_space} pipelines in the space, {limit} tried: Optuna's "
            f"multi-objective TPE (seed 0), the {max(1, limit // 3)} cheapest first"
        )

    def _tpe(self, every: list[Pipeline], limit: int) -> Any:
        from modelpress.search.sampler import TPEProposer

        targets = {k: v for k, v in self.settings.targets.items() if v is not None}
        return TPEProposer(self.settings.space, every, targets, max(1, limit // 3))

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
                        if runner.artifact(node.id) is not None or node.id in flying:
                            continue
                        if node.parent != "baseline" and runner.artifact(node.parent) is None:
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
                why = dead_end(entry, runner.artifact(node.id) is not None)
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
        elif all(runner.artifact(n.id) is not None for n in pipe.nodes):
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


def dead_end(entry: dict[str, Any], built: bool) -> str | None:
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
