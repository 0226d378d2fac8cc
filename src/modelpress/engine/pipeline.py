"""The runner: baseline, then the graph of steps (Artifact in → Artifact out), every artifact
measured in its own runtime.

Each node (the baseline, each step) has a key: a hash of its parents' keys, its config, the
versions that change results and the content of what it reads (model files, weights, the data
as loaded). The key names the node's folder (``nodes/KEY``: outputs, training checkpoints), so
a checkpoint is never resumed under another lineage; and ``resume=True`` reuses every finished
node whose key is in the record, wherever it sits in the recipe. record.json is rewritten
atomically after every node, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.core import environment
from modelpress.core.artifact import Artifact
from modelpress.core.graph import BASELINE, run_order
from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe, dump_recipe
from modelpress.core.registry import StepConfig, handler_for
from modelpress.core.rundir import (
    RunDir,
    check_output,
    clear_run,
    output_lock,
    stable_hash,
    write_json_atomic,
)
from modelpress.engine.context import Context, baseline_reads, build_context
from modelpress.engine.deadline import cut_at
from modelpress.engine.keys import baseline_key, node_inputs, node_key
from modelpress.engine.measure.harness import analyze
from modelpress.engine.measure.races import head_to_head_of_finalists, time_against_fp32
from modelpress.engine.measure.timing import Guard, Timing
from modelpress.engine.preflight import check_steps
from modelpress.engine.record import MEASURED, finalize, new_record, node_summary
from modelpress.engine.resume import (
    OUTPUTS,
    check_resume,
    earlier_outputs,
    previous_nodes,
    restore,
    save_outputs,
)
from modelpress.errors import ModelpressError, ResumeError, first_line

__all__ = ["MEASURED", "Runner", "default_out", "run"]


def default_out(recipe: Recipe) -> Path:
    return Path(recipe.out) if recipe.out else Path("runs") / (recipe.name or "run")


class Runner:
    def __init__(
        self,
        recipe: Recipe,
        root: Path,
        observer: Observer,
        resume: bool,
        persist: bool = True,
        guard: Guard | None = None,
    ) -> None:
        """``guard``: held around every timing of the run (a parallel search's worker passes
        its machine-wide lock); none: the timings run as they come."""
        self.recipe = recipe
        self.timing = Timing(guard)
        self.rd = RunDir(root)
        self.observer = observer
        self.resume = resume
        # False: a worker building nodes for a search's driver, the only writer of the record
        self.persist = persist
        self.outputs: dict[str, list[np.ndarray]] = {}  # by artifact name: every output
        self.entries: dict[str, dict[str, Any]] = {}  # by artifact name
        self.produced: list[Artifact] = []  # in the order they were made
        self.made: dict[str, Artifact] = {}  # by node id (baseline, each step's ref)
        self.keys: dict[str, str] = {}  # node id → key
        self.reran: dict[str, str] = {}  # node key → why its earlier outputs were not reused

    # ------------------------------------------------------------------ record
    # ------------------------------------------------------------------ record
    def finalize(self) -> None:
        """The record read again from its measurements (deltas, targets, recommendation) and,
        unless a worker's, written: after every node, and after a search changes entries."""
        finalize(self.record, self.recipe)
        if self.persist:
            self.rd.write_record(self.record)

    def artifact(self, node: str) -> Artifact | None:
        """The artifact node ``node`` (the baseline, a step's ref) made, or None."""
        return self.made.get(node)

    def live(self) -> dict[str, Artifact]:
        """Every artifact of the run, by name, the baseline first."""
        return {a.name: a for a in [self.baseline, *self.produced]}

    def rescore(self, entry: dict[str, Any], **changes: Any) -> None:
        """A search's pass changes an entry of this run's record (its ``metrics`` on another
        share of the validation split, its ``status``, ``accuracy_on``; a change to None
        removes the field); ``finalize`` reads the record again afterwards."""
        if not any(entry is e for e in [self.record["baseline"], *self.record["artifacts"]]):
            raise ValueError(f"{entry.get('name')}: not an entry of this run's record")
        for field, value in changes.items():
            if value is None:
                entry.pop(field, None)
            else:
                entry[field] = value

    # ------------------------------------------------------------------ artifacts
    def _relative(self, entry: dict[str, Any]) -> dict[str, Any]:
        if entry.get("path"):
            entry["path"] = self.rd.relative(entry["path"])
        entry["extra_files"] = [self.rd.relative(p) for p in entry.get("extra_files", [])]
        entry["companions"] = [self.rd.relative(p) for p in entry.get("companions", [])]
        entry["handoffs"] = {k: self.rd.relative(p) for k, p in entry.get("handoffs", {}).items()}
        return entry

    def _unique(self, name: str, step: str) -> str:
        """The artifact's own name; when taken, its step's (a named step), else both."""
        for candidate in (name, step, f"{name}-{step}"):
            if candidate not in self.entries:
                return candidate
        return f"{name}-{step}-{len(self.entries)}"

    def _node(
        self,
        index: int,
        config: StepConfig,
        ctx: Context,
        before: dict[str, dict[str, Any]],
        says: str | None = None,
    ) -> dict[str, Any]:
        name = config.display_name
        entry: dict[str, Any] = {
            "index": index + 1,
            "name": name,
            "id": config.ref,
            "type": config.type,
            "status": "failed",
            "seconds": 0.0,
            "error": None,
            "config": config.to_dict(),
            "config_hash": stable_hash(config.to_dict()),
            "from": [],
            "key": None,
            "input": None,
            "reused": False,
            "artifact": None,
        }
        try:
            parents = node_inputs(index, config, self.recipe, self.made)
        except ModelpressError as e:
            entry["error"] = str(e)
            self.observer.event(
                "step-done", f"{name}: failed", step=name, status="failed", error=str(e), seconds=0
            )
            return entry
        key = node_key(config, [self.keys[p] for p in parents], self.recipe)
        inputs = [self.made[p] for p in parents]
        entry.update(key=key, input=inputs[0].name, inputs=[a.name for a in inputs])
        entry["from"] = parents
        node_dir = self.rd.node_dir(key)
        prev = before.get(key)
        reused = self._reuse(prev, node_dir, config, ctx, index, says) if prev else None
        if reused is not None:
            self.keys[config.ref] = key
            return {**reused, "index": index + 1, "name": name, "id": config.ref, "reused": True}
        entry = self._run_step(entry, config, inputs, ctx, node_dir)
        if key in self.reran:  # a finished node whose saved outputs could not be reused
            entry["reran"] = self.reran.pop(key)
        if entry.get("artifact"):
            self.keys[config.ref] = key
        return entry

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        self.start()
        for index in run_order(self.recipe.steps):
            self.run_step(index)
        return self.finish()

    def start(self, validation_samples: int | None = None) -> None:
        """The context and the baseline (measured, or reused under its key); record.json
        written. Steps then run one at a time (``run_step``, ``add_step``), ``finish`` last.
        ``validation_samples``: every node is evaluated on the first that many validation
        samples only (a search's coarse pass; the data's digest, hence every key, says so)."""
        rd, recipe = self.rd, self.recipe
        previous = rd.read_record() if self.resume else None
        identity = recipe.identity()
        check_resume(previous, identity, rd.root)
        rd.create()
        if self.persist:
            dump_recipe(recipe, rd.recipe_path)
        ctx, baseline = build_context(recipe, self.observer, rd)
        ctx.timing = self.timing
        check_steps(recipe.steps, ctx, baseline)  # what needs no model run: before the baseline
        self.full_validation = ctx.data.validation
        if validation_samples is not None and len(ctx.data.validation) > validation_samples:
            import dataclasses

            ctx.data = dataclasses.replace(
                ctx.data, validation=ctx.data.validation.head(validation_samples)
            )
        record = new_record(recipe, rd.root.name, ctx, identity)
        if self.persist:
            write_json_atomic(rd.root / "env.json", record["environment"])

        versions = environment.collect(ctx.threads)["packages"]
        reads = baseline_reads(ctx, baseline)
        base_key = baseline_key(identity, reads, versions)
        base_dir = rd.node_dir(base_key)
        before = previous_nodes(previous)
        earlier, reran = None, None
        if before.get(base_key, {}).get("id") == BASELINE and isinstance(
            (previous or {}).get("baseline"), dict
        ):
            samples = len(ctx.data.validation)
            earlier, reran = earlier_outputs(base_dir / OUTPUTS, previous["baseline"], samples)
        if earlier is not None:
            record["baseline"] = previous["baseline"]  # type: ignore[index]
            self.outputs["baseline"] = earlier
            self.observer.event("resume", f"baseline: measured before (node {base_key}), reused")
        else:
            if reran:
                self.observer.event("warning", f"baseline: {reran}; measuring it again")
            elif previous and previous.get("baseline"):
                self.observer.event(
                    "resume",
                    "baseline: the model's files, weights or data changed since the last run "
                    "(or it ran with an older modelpress); measuring it again, and every step "
                    "after it",
                )
            self.observer.event("baseline", f"measuring baseline {recipe.model}")
            entry, out = analyze(baseline, ctx)
            record["baseline"] = entry
            save_outputs(base_dir / OUTPUTS, out)
            self.outputs["baseline"] = out
        self.entries["baseline"] = record["baseline"]
        self.made[BASELINE], self.keys[BASELINE] = baseline, base_key
        self.root_node = {
            "id": BASELINE,
            "type": "baseline",
            "key": base_key,
            "parents": [],
            "status": record["baseline"].get("status", "ok"),  # collapsed: at chance, NaN
            "artifact": "baseline",
            "reads": reads,
        }
        if reran:
            self.root_node["reran"] = reran  # its earlier outputs could not be reused
        record["nodes"] = [self.root_node]
        ctx.baseline = record["baseline"]
        self.ctx, self.baseline, self.record, self.before = ctx, baseline, record, before
        self.done: dict[int, dict[str, Any]] = {}
        self.finalize()

    def run_step(self, index: int) -> dict[str, Any]:
        """Run (or reuse) the recipe's step ``index``; the record rewritten after it."""
        return self._recorded(
            index, self._node(index, self.recipe.steps[index], self.ctx, self.before)
        )

    def _recorded(self, index: int, done: dict[str, Any]) -> dict[str, Any]:
        record = self.record
        self.done[index] = done
        record["steps"] = [self.done[i] for i in sorted(self.done)]  # recipe order
        record["artifacts"] = [s["artifact"] for s in record["steps"] if s.get("artifact")]
        record["nodes"] = [self.root_node, *(node_summary(s) for s in record["steps"])]
        self.finalize()
        return done

    def refresh(self) -> None:
        """Take in the nodes finished since ``start`` (a worker: others built them)."""
        self.before = previous_nodes(self.rd.read_record())

    def adopt(self, config: StepConfig, built: dict[str, Any], says: str) -> dict[str, Any]:
        """Append a step that another process built (its step entry, under the key this runner
        gives it), restoring its artifact from its files; a failed one is recorded as it is."""
        self.recipe.steps.append(config)
        index = len(self.recipe.steps) - 1
        if built.get("status") not in MEASURED or not built.get("artifact"):
            return self._recorded(index, {**built, "index": index + 1})
        self.before[built["key"]] = built
        done = self._node(index, config, self.ctx, self.before, says=says)
        if done.get("key") != built["key"]:
            raise ModelpressError(
                f"{config.display_name}: built under node {built['key']}, but here it is "
                f"{done.get('key')}; the worker and the driver disagree on its lineage"
            )
        return self._recorded(index, {**done, "reused": bool(built.get("reused"))})

    def add_step(self, config: StepConfig) -> dict[str, Any]:
        """Append a step to the recipe and run it (a search grows the graph as it goes)."""
        self.recipe.steps.append(config)
        return self.run_step(len(self.recipe.steps) - 1)

    def finish(self, reports: bool = True) -> dict[str, Any]:
        """Quantized artifacts timed against their FP32 siblings, the finalists raced, the
        recommendation made; the reports written."""
        record, ctx, baseline = self.record, self.ctx, self.baseline
        live = {a.name: a for a in [baseline, *self.produced]}
        time_against_fp32(record, ctx, live)  # flags first: the finalists leave them out
        record["head_to_head"] = head_to_head_of_finalists(record, ctx, live)
        self.finalize()
        if reports:
            from modelpress.report import write_reports

            write_reports(record, self.rd.root)
        return record

    def _reuse(
        self,
        prev: dict[str, Any],
        node_dir: Path,
        config: StepConfig,
        ctx: Context,
        index: int,
        says: str | None = None,
    ) -> dict[str, Any] | None:
        """A finished node of the earlier run under the same key, rebuilt from its files."""
        if prev.get("status") not in MEASURED:
            return None
        art_entry = prev.get("artifact") or {}
        try:
            art = restore(self.rd, art_entry, ctx, f"steps.{index}.artifact") if art_entry else None
        except ResumeError:
            raise  # a record pointing outside the run directory: never followed
        except Exception as e:  # its files no longer load here: run the node again
            self.observer.event(
                "warning",
                f"{config.display_name}: its earlier artifact does not load ({first_line(e)}); "
                "running it again",
            )
            return None
        if art is None:
            return None
        samples = len(ctx.data.validation)
        outputs, reran = earlier_outputs(node_dir / OUTPUTS, art_entry, samples)
        if outputs is None:
            self.observer.event("warning", f"{config.display_name}: {reran}; running it again")
            self.reran[prev["key"]] = reran
            return None
        self.outputs[art.name] = outputs
        self.entries[art.name] = art_entry
        self.produced.append(art)
        self.made[config.ref] = art
        self.observer.event(
            "resume",
            f"{config.display_name}: " + (says or f"finished before (node {prev['key']}), reused"),
        )
        return prev

    def _run_step(
        self,
        entry: dict[str, Any],
        config: StepConfig,
        inputs: list[Artifact],
        ctx: Context,
        node_dir: Path,
    ) -> dict[str, Any]:
        name = config.display_name
        (node_dir / "error.txt").unlink(missing_ok=True)
        self.observer.event("step", f"{name}: running", step=name)
        ctx.step_dir = node_dir
        start = time.perf_counter()
        try:
            source = inputs if config.max_inputs > 1 else inputs[0]
            with cut_at(ctx.deadline, name):
                art = handler_for(config)(source, config, ctx)
            art.name = name if ctx.node_names else self._unique(art.name, name)
            parent_entry = self.entries.get(art.parent or "")
            art_entry, out = analyze(
                art,
                ctx,
                parent_outputs=self.outputs.get(art.parent or ""),
                reference_outputs=self.outputs["baseline"]
                if ctx.task.metrics_against_baseline
                else None,
                parent_entry=parent_entry,
            )
            save_outputs(node_dir / OUTPUTS, out)
            self.outputs[art.name] = out
            self.entries[art.name] = self._relative(art_entry)
            self.produced.append(art)
            self.made[config.ref] = art
            entry["artifact"], entry["status"] = art_entry, art_entry["status"]
            entry.update(art.step_facts)  # e.g. distill's `scratch` comparison
        except ModelpressError as e:
            entry["error"] = str(e)
        except Exception as e:  # a step's library failed: record the reason, keep going
            entry["error"] = first_line(e)
            (node_dir / "error.txt").write_text(traceback.format_exc())
        entry["seconds"] = round(time.perf_counter() - start, 3)
        self.observer.event(
            "step-done",
            f"{name}: {entry['status']}",
            step=name,
            status=entry["status"],
            error=entry["error"],
            seconds=entry["seconds"],
        )
        return entry


def run(
    recipe: Recipe,
    *,
    out: Path | str | None = None,
    resume: bool = False,
    force: bool = False,
    observer: Observer | None = None,
) -> dict[str, Any]:
    """Run a recipe into a run directory and return its record."""
    if recipe.optimize is not None:
        raise ModelpressError(
            "this recipe has an optimize: block, a search; run it with modelpress optimize "
            "RECIPE (or remove the block to run its steps)"
        )
    root = Path(out) if out else default_out(recipe)
    check_output(root, "--out", folder=True)  # before any work: a file or read-only folder
    with output_lock(root):  # one run writes a run directory at a time
        if not resume and not force and (root / "record.json").exists():
            raise ResumeError(
                f"{root} already holds a run; pass --resume to continue it, --force to start "
                "over, or choose another --out"
            )
        if force and not resume and (root / "record.json").exists():
            clear_run(root)
        recipe = recipe.model_copy(update={"out": str(root.resolve())})
        return Runner(recipe, root, observer or Observer(), resume).run()
