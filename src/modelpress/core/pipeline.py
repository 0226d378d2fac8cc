"""The runner: baseline, then each step (Artifact in → Artifact out), every artifact measured.

record.json is rewritten atomically after the baseline and after every step, so an interrupted
run keeps what it finished; ``resume=True`` reuses each leading step whose config hash, input and
files match the record, and runs the rest.
"""

from __future__ import annotations

import shutil
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.core import environment
from modelpress.core.artifact import Artifact
from modelpress.core.context import Context, build_context
from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe, dump_recipe
from modelpress.core.registry import StepConfig, handler_for
from modelpress.core.rundir import (
    RunDir,
    check_output,
    file_sha256,
    stable_hash,
    write_json_atomic,
)
from modelpress.errors import ModelpressError, ResumeError, first_line
from modelpress.evaluate import targets as targets_mod
from modelpress.evaluate import versus_fp32
from modelpress.evaluate.analyze import analyze
from modelpress.evaluate.benchmark import head_to_head
from modelpress.runtimes import runtime_for

SCHEMA = 1
OUTPUTS = "outputs.npy"  # validation outputs of a step's artifact, for verifying its children


def default_out(recipe: Recipe) -> Path:
    return Path(recipe.out) if recipe.out else Path("runs") / (recipe.name or "run")


def _identity(recipe: Recipe) -> dict[str, Any]:
    ident = recipe.identity()
    for key in ("weights", "model"):
        path = Path(ident[key]) if isinstance(ident.get(key), str) else None
        if path is not None and path.is_file():
            ident[f"{key}_sha256"] = file_sha256(path)
    return ident


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
    def __init__(self, recipe: Recipe, root: Path, observer: Observer, resume: bool) -> None:
        self.recipe = recipe
        self.rd = RunDir(root)
        self.observer = observer
        self.resume = resume
        self.outputs: dict[str, np.ndarray] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.produced: list[Artifact] = []

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
        self.rd.write_record(record)

    def _head_to_head(self, record: dict[str, Any], ctx: Context, baseline: Artifact) -> Any:
        """Time the recommendation's finalists side by side, once, at the end of the run: the
        separate benchmarks were minutes apart, on a machine whose load may have changed."""
        wanted = self.recipe.targets.model_dump()
        names = [
            e["name"]
            for e in targets_mod.finalists(record["baseline"], record["artifacts"], wanted)
        ]
        live = {a.name: a for a in [baseline, *self.produced]}
        arts = [live[n] for n in names if n in live]
        if len(arts) < 2:
            return None  # nothing to compare
        cfg = self.recipe.evaluate
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
        if "qat_float_model" in details:  # a file a later export loads
            details["qat_float_model"] = str(
                self._inside(details["qat_float_model"], f"{where}.details.qat_float_model")
            )
        if not all(p.is_file() for p in [path, *extra, *companions]):
            return None
        module, rebuild = None, None
        if entry["format"] == "torch" and path.suffix == ".pt2":  # quantized torch graphs
            from modelpress.sources.models import load_exported

            module = load_exported(path)
        elif entry["format"] == "torch":  # a modelpress checkpoint (distilled, pruned)
            from modelpress.core.context import rebuild_info
            from modelpress.sources import models

            # the step wrote it, from a model this recipe names (or trusts): the same trust
            spec = models.inspect_source(str(path), trust=ctx.recipe.code_trust())
            module, rebuild = models.build(spec), rebuild_info(spec)
        ctx.claim(path, entry["step"])
        return Artifact(
            entry["name"],
            entry["format"],
            ctx.input_specs,
            entry["precision"],
            path,
            entry["parent"],
            entry["step"],
            module,
            extra,
            companions,
            details=details,
            rebuild=rebuild,
        )

    def _input_for(self, config: StepConfig, baseline: Artifact) -> Artifact | None:
        for art in reversed([baseline, *self.produced]):
            if config.accepts(art):
                return art
        return None

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        rd, recipe = self.rd, self.recipe
        previous = rd.read_record() if self.resume else None
        identity = _identity(recipe)
        _check_resume(previous, identity, rd.root)
        rd.create()
        dump_recipe(recipe, rd.recipe_path)
        ctx, baseline = build_context(recipe, self.observer, rd)
        record = self._new_record(ctx, identity)
        write_json_atomic(rd.root / "env.json", record["environment"])

        base_dir = rd.baseline_dir()
        if previous and previous.get("baseline") and (base_dir / OUTPUTS).is_file():
            record["baseline"] = previous["baseline"]
            self.outputs["baseline"] = np.load(base_dir / OUTPUTS)
            self.observer.event("resume", "baseline: measured before, reused")
        else:
            self.observer.event("baseline", f"measuring baseline {recipe.model}")
            entry, out = analyze(baseline, ctx)
            record["baseline"] = entry
            np.save(base_dir / OUTPUTS, out)
            self.outputs["baseline"] = out
        self.entries["baseline"] = record["baseline"]
        ctx.baseline = record["baseline"]
        self._finalize(record)

        reusable = previous is not None
        done = (previous or {}).get("steps")
        done = [s if isinstance(s, dict) else None for s in done] if isinstance(done, list) else []
        for index, config in enumerate(recipe.steps, start=1):
            prev = done[index - 1] if reusable and len(done) >= index else None
            entry = self._reuse(prev, index, config, ctx, baseline) if prev else None
            if entry is None:
                reusable = False
                entry = self._run_step(index, config, ctx, baseline)
            record["steps"].append(entry)
            record["artifacts"] = [s["artifact"] for s in record["steps"] if s.get("artifact")]
            self._finalize(record)
        self._versus_fp32(record, ctx, baseline)  # flags first: the finalists leave them out
        record["head_to_head"] = self._head_to_head(record, ctx, baseline)
        self._finalize(record)

        from modelpress.report import write_reports

        write_reports(record, rd.root)
        return record

    def _reuse(
        self, prev: dict[str, Any], index: int, config: StepConfig, ctx: Context, baseline: Artifact
    ) -> dict[str, Any] | None:
        source = self._input_for(config, baseline)
        if (
            prev.get("config_hash") != stable_hash(config.to_dict())
            or prev.get("status") not in ("ok", "degraded")
            or prev.get("input") != (source.name if source else None)
        ):
            return None
        art_entry = prev.get("artifact") or {}
        step_dir = self.rd.step_dir(index, config.display_name)
        art = self._restore(art_entry, ctx, f"steps.{index - 1}.artifact") if art_entry else None
        if art is None or not (step_dir / OUTPUTS).is_file():
            return None
        self.outputs[art.name] = np.load(step_dir / OUTPUTS)
        self.entries[art.name] = art_entry
        self.produced.append(art)
        self.observer.event("resume", f"{config.display_name}: finished before, reused")
        return prev

    def _run_step(
        self, index: int, config: StepConfig, ctx: Context, baseline: Artifact
    ) -> dict[str, Any]:
        name = config.display_name
        step_dir = self.rd.step_dir(index, name)
        (step_dir / "error.txt").unlink(missing_ok=True)
        source = self._input_for(config, baseline)
        entry: dict[str, Any] = {
            "index": index,
            "name": name,
            "type": config.type,
            "status": "failed",
            "seconds": 0.0,
            "error": None,
            "config": config.to_dict(),
            "config_hash": stable_hash(config.to_dict()),
            "input": source.name if source else None,
            "artifact": None,
        }
        self.observer.event("step", f"{name}: running", step=name)
        ctx.step_dir = step_dir
        start = time.perf_counter()
        try:
            if source is None:
                raise ModelpressError(f"{name}: needs {config.wants()}, and the run has none")
            art = handler_for(config)(source, config, ctx)
            art.name = self._unique(art.name, name)
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
            np.save(step_dir / OUTPUTS, out)
            self.outputs[art.name] = out
            self.entries[art.name] = self._relative(art_entry)
            self.produced.append(art)
            entry["artifact"], entry["status"] = art_entry, art_entry["status"]
            entry.update(art.step_facts)  # e.g. distill's `scratch` comparison
        except ModelpressError as e:
            entry["error"] = str(e)
        except Exception as e:  # a step's library failed: record the reason, keep going
            entry["error"] = first_line(e)
            (step_dir / "error.txt").write_text(traceback.format_exc())
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
    root = Path(out) if out else default_out(recipe)
    check_output(root, "--out", folder=True)  # before any work: a file or read-only folder
    if not resume and not force and (root / "record.json").exists():
        raise ResumeError(
            f"{root} already holds a run; pass --resume to continue it, --force to start over, "
            "or choose another --out"
        )
    if force and not resume and (root / "record.json").exists():
        (root / "record.json").unlink()
        for folder in ("steps", "artifacts", "plots"):  # files of the run being replaced
            shutil.rmtree(root / folder, ignore_errors=True)
    recipe = recipe.model_copy(update={"out": str(root.resolve())})
    return Runner(recipe, root, observer or Observer(), resume).run()
