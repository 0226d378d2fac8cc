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

import contextlib
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.core import environment
from modelpress.core.artifact import Artifact
from modelpress.core.graph import BASELINE, run_order
from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe, dump_recipe
from modelpress.core.registry import StepConfig, describe_artifact, handler_for
from modelpress.core.rundir import (
    RunDir,
    check_output,
    output_lock,
    stable_hash,
    write_json_atomic,
)
from modelpress.engine.context import Context, baseline_reads, build_context
from modelpress.engine.measure import analyze
from modelpress.engine.preflight import check_steps
from modelpress.errors import ModelpressError, ResumeError, StepError, first_line
from modelpress.evaluate import targets as targets_mod
from modelpress.evaluate import techniques, versus_fp32
from modelpress.evaluate.benchmark import head_to_head
from modelpress.runtimes import runtime_for
from modelpress.sources.fingerprint import sources_digest

SCHEMA = 2  # 2: nodes with keys and parents; every field of schema 1 kept as it was
# Statuses of a node whose artifact was made and measured: reused on --resume, and its
# children run from it (a collapsed one is shown, never recommended: evaluate/targets.py)
MEASURED = ("ok", "degraded", "collapsed")
RACES_OFF = "not measured (evaluate.races off)"
OUTPUTS = "outputs.npz"  # validation outputs of a node's artifact (every output), for its children


def _save_outputs(path: Path, outputs: list[np.ndarray]) -> None:
    np.savez(path, *outputs)  # arr_0, arr_1, ... in the model's output order


def _load_outputs(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _earlier_outputs(
    path: Path, entry: dict[str, Any], samples: int
) -> tuple[list[np.ndarray] | None, str | None]:
    """A finished node's saved outputs for --resume, or (None, why not) when the file is
    missing, unreadable (truncated, not an .npz) or not what its record describes (another
    count of outputs, of samples or another shape): the node is then measured again."""
    if not path.is_file():
        return None, f"{path} is missing"
    try:
        outputs = _load_outputs(path)
    except Exception as e:  # zipfile, zlib, numpy's format checks: each its own exception
        return None, f"{path} cannot be read ({first_line(e, 120)})"
    described = entry.get("outputs")
    shapes = [list(o.shape[1:]) for o in outputs]
    if not outputs or any(len(o) != samples for o in outputs):
        return None, f"{path} does not hold {samples} samples of every output"
    if isinstance(described, list) and shapes != [d.get("shape") for d in described]:
        return None, f"{path} holds outputs of shapes {shapes}, not those its record describes"
    return outputs, None


def default_out(recipe: Recipe) -> Path:
    return Path(recipe.out) if recipe.out else Path("runs") / (recipe.name or "run")


def _identity(recipe: Recipe) -> dict[str, Any]:
    return recipe.identity()


def _check_resume(previous: dict[str, Any] | None, identity: dict[str, Any], root: Path) -> None:
    if previous is None:
        return
    before = previous.get("identity", {})
    differs = sorted(k for k in set(before) | set(identity) if before.get(k) != identity.get(k))
    if differs:
        raise ResumeError(
            f"{root}: --resume on a run made from a different recipe ({', '.join(differs)} "
            "differ); drop --resume to start over with --force, or pick another --out"
        )


class Runner:
    def __init__(
        self, recipe: Recipe, root: Path, observer: Observer, resume: bool, persist: bool = True
    ) -> None:
        self.recipe = recipe
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
    def _new_record(self, ctx: Context, identity: dict[str, Any]) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.recipe.name or self.rd.root.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "task": ctx.task.name,
            "primary_metric": ctx.task.primary,
            "model": {
                "source": self.recipe.model,
                "weights": self.recipe.weights,
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

    def _finalize(self, record: dict[str, Any]) -> None:
        baseline = record["baseline"]
        task = record["task"]
        targets_mod.annotate(baseline, baseline, task)
        for entry in record["artifacts"]:
            targets_mod.annotate(entry, baseline, task)
        wanted = self.recipe.targets.model_dump()
        for entry in [baseline, *record["artifacts"]]:
            entry["targets"] = targets_mod.check(entry, wanted)
        race = record.get("head_to_head")
        rec, results = targets_mod.recommend(baseline, record["artifacts"], wanted, race)
        record["recommendation"], record["targets"] = rec, results
        record["decisions"] = targets_mod.decisions(baseline, record["artifacts"], wanted, race)
        if self.recipe.compare:
            record["techniques"] = techniques.table(record, self.recipe.compare)
        if self.persist:
            self.rd.write_record(record)

    def _head_to_head(self, record: dict[str, Any], ctx: Context, baseline: Artifact) -> Any:
        """Time the recommendation's finalists side by side, once, at the end of the run: the
        separate benchmarks were minutes apart, on a machine whose load may have changed."""
        cfg = self.recipe.evaluate
        if not cfg.races:
            return {"skipped": RACES_OFF, "results": {}}
        wanted = self.recipe.targets.model_dump()
        names = [
            e["name"]
            for e in targets_mod.finalists(record["baseline"], record["artifacts"], wanted)
        ]
        live = {a.name: a for a in [baseline, *self.produced]}
        arts = [live[n] for n in names if n in live]
        if len(arts) < 2:
            return None  # nothing to compare
        self.observer.event("head-to-head", f"timing {', '.join(names)} in turn")
        runtimes: dict[str, Any] = {}
        try:
            for art in arts:
                runtimes[art.name] = runtime_for(art, ctx.threads)
            with self.observer.progress("head-to-head", None):
                race = head_to_head(
                    runtimes,
                    ctx.data.validation.sample_batch,
                    batch=record["baseline"]["latency_ms"]["batch"],
                    warmup=cfg.warmup,
                    repeats=cfg.repeats,
                )
            return race | {"window": targets_mod.FINALIST_WINDOW}
        except Exception as e:  # the separate benchmarks still stand
            return {"error": first_line(e), "results": {}}
        finally:
            for runtime in reversed(list(runtimes.values())):  # torch's threads: last in, first out
                runtime.close()

    def _versus_fp32(self, record: dict[str, Any], ctx: Context, baseline: Artifact) -> None:
        """Time every quantized artifact in one loop with its runtime's FP32 artifact, and flag
        the ones slower than it (``evaluate/versus_fp32``), before the finalists race."""
        entries = [record["baseline"], *record["artifacts"]]
        if not self.recipe.evaluate.races:
            versus_fp32.annotate(
                entries,
                {q: versus_fp32.not_compared(s, RACES_OFF) for q, s in versus_fp32.pairs(entries)},
            )
            return
        timed = [f"{q} with {s}" for q, s in versus_fp32.pairs(entries) if s]
        if timed:
            self.observer.event("int8-vs-fp32", f"timing {', '.join(timed)} in turn")
        cfg = self.recipe.evaluate
        with self.observer.progress("quantized vs FP32", None):
            results = versus_fp32.time_pairs(
                entries,
                {a.name: a for a in [baseline, *self.produced]},
                ctx.threads,
                ctx.data.validation.sample_batch,
                batch=record["baseline"]["latency_ms"]["batch"],
                warmup=cfg.warmup,
                repeats=cfg.repeats,
            )
        for entry in versus_fp32.annotate(entries, results):
            self.observer.event("warning", versus_fp32.describe(entry))

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

    def _inside(self, value: Any, field: str) -> Path:
        """A path the record names, only if it lies in the run directory: a record that points
        elsewhere (edited, or from a run moved since) never makes modelpress read outside it."""
        root = self.rd.root.resolve()
        path = (root / value).resolve() if isinstance(value, str) and value else None
        if path is None or not path.is_relative_to(root):
            raise ResumeError(
                f"{self.rd.record_path}: {field} {value!r} is not a file in the run directory "
                f"{root}; drop --resume and start over with --force"
            )
        return path

    def _restore(self, entry: dict[str, Any], ctx: Context, where: str) -> Artifact | None:
        """Rebuild a finished step's artifact from its files (for --resume)."""
        if not entry.get("path"):
            return None
        path = self._inside(entry["path"], f"{where}.path")
        extra = [
            self._inside(p, f"{where}.extra_files.{i}")
            for i, p in enumerate(entry.get("extra_files") or [])
        ]
        companions = [
            self._inside(p, f"{where}.companions.{i}")
            for i, p in enumerate(entry.get("companions") or [])
        ]
        details = dict(entry.get("details") or {})
        handoffs = {  # files a later step loads: only ever inside the run directory
            k: self._inside(p, f"{where}.handoffs.{k}")
            for k, p in (entry.get("handoffs") or {}).items()
        }
        if not all(p.is_file() for p in [path, *extra, *companions, *handoffs.values()]):
            return None
        module, rebuild = None, None
        if entry["format"] == "torch" and path.suffix == ".pt2":  # quantized torch graphs
            from modelpress.sources.models import load_exported

            module = load_exported(path)
        elif entry["format"] == "torch":  # a modelpress checkpoint (distilled, pruned)
            from modelpress.engine.context import rebuild_info
            from modelpress.sources import models

            # the step wrote it, from a model this recipe names (or trusts): the same trust
            spec = models.inspect_source(str(path), trust=ctx.recipe.code_trust())
            module, rebuild = models.build(spec), rebuild_info(spec)
        ctx.claim(path, entry["step"])
        transform = entry.get("input_transform")
        specs = ctx.input_specs
        if transform:
            from modelpress.runtimes.adapt import pixel_specs

            specs = pixel_specs(specs)
        return Artifact(
            entry["name"],
            entry["format"],
            specs,
            entry["precision"],
            path,
            entry.get("parents") or ([entry["parent"]] if entry.get("parent") else []),
            entry["step"],
            module,
            extra,
            companions,
            details=details,
            handoffs=handoffs,
            rebuild=rebuild,
            input_transform=transform,
        )

    def _inputs(self, index: int, config: StepConfig) -> list[str]:
        """The node ids a step starts from: its ``from:``, else the newest node before it in the
        recipe whose artifact it accepts (the baseline last). A ModelpressError says why none."""
        if config.sources is None:
            earlier = [s.ref for s in self.recipe.steps[:index]]
            for ref in reversed([BASELINE, *earlier]):
                art = self.made.get(ref)
                if art is not None and config.accepts(art):
                    return [ref]
            raise ModelpressError(
                f"{config.display_name}: needs {config.wants()}, and the run has none"
            )
        for ref in config.sources:
            art = self.made.get(ref)
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

    def _key(self, config: StepConfig, parents: list[str]) -> str:
        reads = sources_digest(
            getattr(config, k, None)
            for k in ("teacher", "student", "teacher_weights", "student_weights")
        )
        targets = self.recipe.targets.model_dump()
        return stable_hash(
            {
                "parents": [self.keys[p] for p in parents],
                "config": config.computation(),
                "reads": reads,
                "targets": {k: targets[k] for k in config.reads_targets},
            }
        )

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
            parents = self._inputs(index, config)
        except ModelpressError as e:
            entry["error"] = str(e)
            self.observer.event(
                "step-done", f"{name}: failed", step=name, status="failed", error=str(e), seconds=0
            )
            return entry
        key = self._key(config, parents)
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
        identity = _identity(recipe)
        _check_resume(previous, identity, rd.root)
        rd.create()
        if self.persist:
            dump_recipe(recipe, rd.recipe_path)
        ctx, baseline = build_context(recipe, self.observer, rd)
        check_steps(recipe.steps, ctx, baseline)  # what needs no model run: before the baseline
        self.full_validation = ctx.data.validation
        if validation_samples is not None and len(ctx.data.validation) > validation_samples:
            import dataclasses

            ctx.data = dataclasses.replace(
                ctx.data, validation=ctx.data.validation.head(validation_samples)
            )
        record = self._new_record(ctx, identity)
        if self.persist:
            write_json_atomic(rd.root / "env.json", record["environment"])

        versions = environment.collect(ctx.threads)["packages"]
        reads = baseline_reads(ctx, baseline)
        base_key = stable_hash({"identity": identity, "reads": reads, "versions": versions})
        base_dir = rd.node_dir(base_key)
        before = _previous_nodes(previous)
        earlier, reran = None, None
        if before.get(base_key, {}).get("id") == BASELINE and isinstance(
            (previous or {}).get("baseline"), dict
        ):
            samples = len(ctx.data.validation)
            earlier, reran = _earlier_outputs(base_dir / OUTPUTS, previous["baseline"], samples)
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
            _save_outputs(base_dir / OUTPUTS, out)
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
        self._finalize(record)

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
        record["nodes"] = [self.root_node, *(_node_summary(s) for s in record["steps"])]
        self._finalize(record)
        return done

    def refresh(self) -> None:
        """Take in the nodes finished since ``start`` (a worker: others built them)."""
        self.before = _previous_nodes(self.rd.read_record())

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
        self._versus_fp32(record, ctx, baseline)  # flags first: the finalists leave them out
        record["head_to_head"] = self._head_to_head(record, ctx, baseline)
        self._finalize(record)
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
            art = self._restore(art_entry, ctx, f"steps.{index}.artifact") if art_entry else None
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
        outputs, reran = _earlier_outputs(node_dir / OUTPUTS, art_entry, samples)
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
            with _cut_at(ctx.deadline, name):
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
            _save_outputs(node_dir / OUTPUTS, out)
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


@contextlib.contextmanager
def _cut_at(deadline: float | None, name: str) -> Iterator[None]:
    """A step's work stopped at a search's deadline (``time.monotonic()``): a timer signal
    raises StepError at the next Python instruction, so even an export or a calibration that
    would run on is cut off, and the node is recorded failed (run again by --resume). Only in
    the main thread, where signals arrive; elsewhere training still stops per epoch."""
    if deadline is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise StepError(
            f"{name}: stopped: the search's time budget ran out during this step "
            "(--resume runs it again with more --budget)"
        )

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _previous_nodes(previous: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The earlier run's nodes by key: its steps (with their artifacts) and its baseline."""
    if not previous or previous.get("schema", 1) < 2:
        return {}  # schema 1 keyed nothing: everything is measured again
    out: dict[str, dict[str, Any]] = {}
    for node in previous.get("nodes") or []:
        if isinstance(node, dict) and node.get("id") == BASELINE and node.get("key"):
            out[node["key"]] = node
    for step in previous.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("key"), str):
            out[step["key"]] = step
    return out


def _node_summary(step: dict[str, Any]) -> dict[str, Any]:
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
            (root / "record.json").unlink()
            for folder in ("nodes", "steps", "artifacts", "plots"):  # the replaced run's files
                shutil.rmtree(root / folder, ignore_errors=True)
        recipe = recipe.model_copy(update={"out": str(root.resolve())})
        return Runner(recipe, root, observer or Observer(), resume).run()
