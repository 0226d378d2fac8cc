"""The Context every step sees: resolved task, data splits, input specs, threads, run directory.

Resolution order for the input shape: the recipe's ``input_shape``, then what a modelpress
checkpoint recorded, then the zoo entry's default (for resizable data), then the data's own shape.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec, parse_input_shape
from modelpress.core.observer import Observer
from modelpress.core.process import seeded
from modelpress.core.recipe import DataConfig, Recipe
from modelpress.core.rundir import RunDir
from modelpress.engine.measure.evaluation import Evaluated, evaluate_split
from modelpress.engine.measure.timing import SideBySide, Timing, time_side_by_side
from modelpress.errors import DataSourceError, ModelSourceError, StepError, first_line
from modelpress.runtimes.adapt import UINT8_NHWC, camera_input, float_specs, pixel_specs
from modelpress.sources import models
from modelpress.sources.data import Dataset, Split, load_data
from modelpress.tasks import get_task
from modelpress.tasks.base import Task


@dataclass
class Context:
    recipe: Recipe
    task: Task  # what the outputs mean: metrics, verification, losses (``task.name``: its name)
    data: Dataset
    input_specs: list[InputSpec]  # batch 1, dtypes as the data has them
    model_spec: models.ModelSpec
    threads: int
    observer: Observer = field(default_factory=Observer)
    run_dir: RunDir | None = None

    def example_inputs(self, batch: int = 1) -> list[torch.Tensor]:
        """Real validation samples as tensors (for tracing, exporting, counting MACs)."""
        return [torch.from_numpy(a) for a in self.data.validation.sample_batch(batch)]

    step_dir: Path | None = None  # set by the runner to the running step's folder
    baseline: dict | None = None  # the baseline's record entry, once measured (targets, Δ)
    deadline: float | None = None  # time.monotonic() by which a training step stops (a search)
    # a search: files named by their node (several processes write one artifacts/ folder)
    node_names: bool = False
    # THE guard of every timing (a parallel search's worker passes its machine-wide lock)
    timing: Timing = field(default_factory=Timing)
    _owners: dict[Path, str] = field(default_factory=dict, repr=False)

    def evaluate(
        self,
        artifact: Artifact,
        split: Split,
        reference: list[np.ndarray] | None = None,
        score: bool = True,
    ) -> Evaluated:
        """``artifact`` run in its runtime on ``split`` and scored by the task (THE
        evaluation of a split: ``engine/measure/evaluation``); ``score`` False: outputs only."""
        return evaluate_split(self, artifact, split, reference=reference, score=score)

    def time_side_by_side(self, artifacts: dict[str, Artifact], what: str) -> SideBySide:
        """A step's candidate files timed side by side at batch 1 in their runtime, under
        the run's timing guard (``engine/measure/timing``)."""
        return time_side_by_side(self, artifacts, what)

    def work_dir(self) -> Path:
        """The running step's folder (a temporary one outside a run directory)."""
        if self.step_dir is None:
            import tempfile

            self.step_dir = Path(tempfile.mkdtemp(prefix="modelpress-"))
        return self.step_dir

    def calibration(self, samples: int | None, where: str) -> Split:
        """The calibration split, or its first ``samples``; a clear error when it cannot serve."""
        split = self.data.calibration
        if len(split) == 0:
            raise StepError(
                f"{where}: the calibration split is empty; set data.splits.calibration (e.g. 0.1)"
            )
        if samples is not None and samples > len(split):
            raise StepError(
                f"{where}: calibration_samples is {samples} but the calibration split has "
                f"{len(split)}; lower calibration_samples or raise data.splits.calibration"
            )
        return split.head(samples) if samples else split

    def load_model(
        self,
        source: str,
        kwargs: dict | None = None,
        weights: str | None = None,
        where: str = "model",
        seed: int | None = None,
    ) -> tuple[torch.nn.Module, models.ModelSpec]:
        """Another torch model for this data (a teacher, a student): built like the baseline
        (zoo arguments filled from the data, initial weights from ``seed``, else the recipe's),
        weights loaded, one forward checked."""
        spec = models.inspect_source(source, kwargs, self.recipe.code_trust())
        if spec.kind in ("onnx", "tflite"):
            raise ModelSourceError(f"{where}: {source} is a deployed file; it needs a torch model")
        seed = self.recipe.seed if seed is None else seed
        module = _build(spec, _auto_kwargs(self.input_specs, self.data, spec), seed)
        if weights:
            models.load_weights(module, Path(weights), source)
        example = self.example_inputs(2 if _has_batchnorm(module) else 1)
        outs = models.check_forward(module, example, source)
        self.task.check_outputs([tuple(o.shape) for o in outs], self.data, source)
        return module, spec

    def claim(self, path: Path, step: str) -> None:
        self._owners.setdefault(path, step)

    def artifact_path(self, step: str, stem: str, suffix: str) -> Path:
        """``artifacts/STEM.SUFFIX`` (e.g. model-fp32.onnx); a second step wanting the same
        name gets ``STEM-STEP.SUFFIX``, so no step overwrites another's file."""
        base = self.run_dir.artifacts if self.run_dir else self.work_dir()
        path = base / f"{stem}{suffix}"
        if self.node_names:
            return base / f"{stem}-{step}{suffix}"
        if self._owners.setdefault(path, step) != step:
            path = base / f"{stem}-{step}{suffix}"
            self._owners.setdefault(path, step)
        return path


def _planned_specs(recipe: Recipe, spec: models.ModelSpec) -> list[InputSpec] | None:
    if recipe.input_specs is not None:
        return recipe.input_specs
    if spec.metadata.get("input_shape") is not None:
        return parse_input_shape(
            spec.metadata["input_shape"], f"{spec.source} (recorded input_shape)"
        )
    source = recipe.data.source
    resizable = source == "builtin:digits" or source.startswith("folder:")
    if resizable and spec.input_kind == "image" and spec.default_input_shape is not None:
        return [InputSpec("input", (1, *spec.default_input_shape))]
    if spec.input_kind == "vector" and source == "builtin:digits":
        return [InputSpec("input", (1, 64))]  # the 8×8 digits, flattened
    return None


def _fit_specs(planned: list[InputSpec] | None, data: Dataset) -> list[InputSpec]:
    """Final specs: shapes and dtypes from the data, names (and explicit dtypes) from the plan."""
    actual = data.input_specs(batch=1)
    if planned is None:
        return actual
    if len(planned) != len(actual):
        raise DataSourceError(
            f"{data.source}: has {len(actual)} input array(s) but input_shape names {len(planned)}"
        )
    out = []
    for i, (want, got) in enumerate(zip(planned, actual, strict=True)):
        if want.shape[1:] != got.shape[1:]:
            raise DataSourceError(
                f"{data.source}: samples of input '{got.name}' have shape {got.shape[1:]} but "
                f"input_shape says {want.shape[1:]}; fix input_shape, or set data.resize: true"
            )
        dtype = want.dtype or got.dtype
        if want.dtype and want.dtype != got.dtype:
            for part in (data.train, data.calibration, data.validation):
                part.inputs[i] = part.inputs[i].astype(want.dtype)
        out.append(InputSpec(want.name, (1, *got.shape[1:]), dtype))
    data.input_names = [s.name for s in out]
    return out


def _task(recipe: Recipe, spec: models.ModelSpec, data: Dataset) -> Task:
    """The recipe's task, else the one a checkpoint recorded, else the data's suggestion, else
    classification; its labels checked (an error, or warnings in ``data.warnings``)."""
    task = get_task(
        recipe.task or spec.metadata.get("task") or data.suggested_task or "classification"
    )
    task = task.bind(recipe.task_settings or None, data)
    task.check_labels(data)
    return task


def _auto_kwargs(specs: list[InputSpec], data: Dataset, spec: models.ModelSpec) -> dict:
    """Zoo arguments a user need not spell out: classes from the data, channels from the shape."""
    auto: dict = {}
    if data.num_classes is not None:
        auto["num_classes"] = data.num_classes
    shape = specs[0].shape
    if spec.input_kind == "tokens":
        pass  # token ids have no channels
    elif spec.input_kind == "vector":
        auto["in_channels"] = math.prod(shape[1:])
    elif len(shape) == 4:
        auto["in_channels"] = shape[1]
    return auto


def _threads(recipe: Recipe, observer: Observer) -> int:
    """The recipe's threads, at most this machine's logical cores (more only slows it down)."""
    cores = os.cpu_count() or 1
    threads = recipe.evaluate.threads or cores
    if threads > cores:
        observer.event(
            "warning",
            f"--threads / evaluate.threads {threads} is more than this machine's {cores} logical "
            f"cores; using {cores}",
        )
    return min(threads, cores)


def _check_forward_memory(
    module: torch.nn.Module, example: list[torch.Tensor], source: str, specs: list[InputSpec]
) -> None:
    """Refuse an input shape whose forward cannot fit in memory, before running it."""
    from modelpress.core.memory import available_bytes, fmt_bytes, largest_activation

    free = available_bytes()
    if free is None:
        return
    largest, op = largest_activation(
        module, [tuple(t.shape) for t in example], [t.dtype for t in example]
    )
    need = 2 * largest  # the largest tensor and the one it is made from, roughly its size
    if need > free:
        shape = "; ".join(",".join(map(str, s.shape)) for s in specs)
        raise ModelSourceError(
            f"{source} at input shape {shape}: one forward of {len(example[0])} sample(s) would "
            f"need about {fmt_bytes(need)} ({op} makes a {fmt_bytes(largest)} tensor) but "
            f"{fmt_bytes(free)} of memory is available; use a smaller --input-shape / "
            "input_shape (or input_size in model_kwargs)"
        )


def build_context(
    recipe: Recipe, observer: Observer | None = None, run_dir: RunDir | None = None
) -> tuple[Context, Artifact]:
    """Load data and model as the recipe says; return the context and the baseline artifact."""
    observer = observer or Observer()
    spec = models.inspect_source(recipe.model, recipe.model_kwargs, recipe.code_trust())
    deployed = _deployed(recipe, spec)
    planned = _planned_specs(recipe, spec) or (deployed.input_specs if deployed else None)
    preprocess = _folder_preprocess(recipe, spec)
    data = load_configured_data(recipe.data, planned, preprocess, _tokenizer(recipe, spec))
    if recipe.evaluate.max_samples is not None:
        data.validation = data.validation.head(recipe.evaluate.max_samples)
    specs = _fit_specs(planned, data)
    task = _task(recipe, spec, data)
    for warning in data.warnings:
        observer.event("warning", warning)
    threads = _threads(recipe, observer)
    if deployed is not None:  # .onnx / .tflite: the file itself, in its runtime
        # a camera-frame file keeps its own (uint8 NHWC) inputs; the data stays float NCHW
        deployed.input_specs = pixel_specs(specs) if deployed.input_transform else specs
        ctx = Context(recipe, task, data, specs, spec, threads, observer, run_dir)
        task.check_outputs(_check_deployed(deployed, ctx), data, recipe.model)
        return ctx, deployed
    module = _build(spec, _auto_kwargs(specs, data, spec), recipe.seed)
    if recipe.weights:
        if spec.kind in ("torchscript", "exported"):
            raise ModelSourceError(
                f"{recipe.model}: a {spec.kind} file carries its own weights; drop --weights"
            )
        models.load_weights(module, Path(recipe.weights), recipe.model)
    ctx = Context(recipe, task, data, specs, spec, threads, observer, run_dir)
    example = ctx.example_inputs(2 if _has_batchnorm(module) else 1)
    _check_forward_memory(module, example, recipe.model, specs)
    outs = models.check_forward(module, example, recipe.model)
    task.check_outputs([tuple(o.shape) for o in outs], data, recipe.model)
    baseline = Artifact(
        "baseline",
        "torch",
        specs,
        module=module,
        details={"source": recipe.model, **_preprocess_said(spec, preprocess)},
        rebuild=rebuild_info(spec),
    )
    return ctx, baseline


def _folder_preprocess(recipe: Recipe, spec: models.ModelSpec) -> dict[str, Any] | None:
    """An ``hf:`` folder's image preprocessing (its preprocessor_config.json's mean and std),
    applied when the recipe sets no ``data.normalize`` of its own."""
    said = (spec.metadata.get("hf") or {}).get("preprocess")
    if recipe.data.normalize is not None or recipe.data.preprocess is not None:
        return None
    return said if said and "mean" in said else None


def _tokenizer(recipe: Recipe, spec: models.ModelSpec) -> str | None:
    """Whose tokenizer text data is tokenised with: ``data.tokenizer``, else the hf: model's
    folder (or the folder a checkpoint of one was trained from)."""
    if recipe.data.tokenizer:
        return recipe.data.tokenizer
    return spec.architecture if spec.architecture.startswith("hf:") else None


def load_configured_data(
    cfg: DataConfig,
    planned: list[InputSpec] | None,
    preprocess: dict[str, Any] | None = None,
    tokenizer: str | None = None,
) -> Dataset:
    """The data as a recipe's ``data:`` block says (splits, seed, normalisation), shaped for
    the ``planned`` inputs (None: as the data come); ``preprocess``: a model folder's mean and
    std, when the recipe gives none."""
    splits = cfg.splits
    normalize = (cfg.normalize.mean, cfg.normalize.std) if cfg.normalize else None
    feed = cfg.preprocess.model_dump() if cfg.preprocess else None
    if feed is not None and feed["mean"] is not None:
        normalize = (feed["mean"], feed["std"])
    if preprocess is not None:  # a model folder's own, when the recipe says nothing
        normalize = (preprocess["mean"], preprocess["std"])
        if preprocess.get("resize"):
            feed = {"resize": preprocess["resize"], "crop": True}
    return load_data(
        cfg.source,
        input_specs=planned,
        seed=cfg.seed,
        splits=(splits.train, splits.calibration, splits.validation),
        max_samples=cfg.max_samples,
        normalize=normalize,
        resize=cfg.resize,
        allow_nonfinite=cfg.allow_nonfinite,
        text={
            "tokenizer": tokenizer or cfg.tokenizer,
            "max_length": cfg.max_length,
            "text_column": cfg.text_column,
            "label_column": cfg.label_column,
        },
        feed=feed,
    )


def baseline_reads(ctx: Context, baseline: Artifact) -> dict:
    """What the baseline is made of, as digests (``sources/fingerprint``): the files its model
    and weights come from, the data as loaded (every split, labels too) and the built model's
    weights. A node key holds them: a changed file or data set is never mistaken for the old."""
    from modelpress.sources.fingerprint import arrays_digest, module_digest, sources_digest

    recipe, spec = ctx.recipe, ctx.model_spec
    sources = [recipe.model, recipe.weights]
    if spec.kind == "checkpoint":  # the factory file the checkpoint names
        sources.append(spec.architecture)
    splits = (ctx.data.train, ctx.data.calibration, ctx.data.validation)
    arrays = [a for split in splits for a in split.inputs] + [s.labels for s in splits]
    return {
        "files": sources_digest(sources),
        "data": arrays_digest(arrays),
        "weights": module_digest(baseline.module) if baseline.module is not None else None,
    }


def _build(spec: models.ModelSpec, kwargs: dict, seed: int) -> torch.nn.Module:
    """``models.build`` with the torch RNG seeded first: torch seeds itself at random in each
    process, so a model's initial weights (and all training after) would differ run to run."""
    with seeded(seed):  # the caller's RNG stream is left as it was
        return models.build(spec, kwargs)


def _preprocess_said(spec: models.ModelSpec, applied: dict[str, Any] | None) -> dict[str, Any]:
    """What the record says of a model folder's preprocessing: what it asks, what was applied."""
    said = (spec.metadata.get("hf") or {}).get("preprocess")
    if not said:
        return {}
    return {"preprocess": {**said, "applied": applied is not None}}


def rebuild_info(spec: models.ModelSpec) -> dict | None:
    """What rebuilds a torch model from code (``Artifact.rebuild``); None for a file-only one."""
    if spec.kind not in ("zoo", "factory", "checkpoint", "hf"):
        return None
    info = {"model": spec.architecture, "model_kwargs": dict(spec.kwargs)}
    if spec.metadata.get("structure"):
        info["structure"] = spec.metadata["structure"]
    return info


def _deployed(recipe: Recipe, spec: models.ModelSpec) -> Artifact | None:
    """The baseline artifact for a deployed file, with the inputs the file declares."""
    if spec.kind not in ("onnx", "tflite"):
        return None
    if recipe.weights:
        raise ModelSourceError(
            f"{recipe.model}: a {spec.kind} file carries its own weights; drop --weights"
        )
    norm = recipe.data.normalize
    return deployed_artifact(Path(spec.source), (list(norm.mean), list(norm.std)) if norm else None)


def deployed_artifact(
    path: Path, normalize: tuple[list[float], list[float]] | None = None
) -> Artifact:
    """A deployed .onnx / .tflite file as an artifact, its inputs and precision read from its
    runtime. A file taking camera frames (uint8 NHWC) gets the transform that feeds it the
    data's float images (``normalize``: how those images were normalised) and float specs."""
    from modelpress.runtimes import runtime_for

    art = Artifact("baseline", path.suffix[1:], [], path=path, details={"source": str(path)})  # type: ignore[arg-type]
    runtime = runtime_for(art, 1)
    art.input_specs = runtime.input_specs()
    art.precision = runtime.precision()  # type: ignore[assignment]
    runtime.close()
    if camera_input(art.input_specs):  # fed the data's float images, turned into pixels
        art.input_transform = {
            "kind": UINT8_NHWC,
            "mean": normalize[0] if normalize else None,
            "std": normalize[1] if normalize else None,
        }
        art.input_specs = float_specs(art.input_specs)
    return art


def _check_deployed(art: Artifact, ctx: Context) -> list[tuple[int, ...]]:
    """The shapes of every output of a deployed file on one real batch."""
    from modelpress.runtimes import runtime_for

    runtime = runtime_for(art, ctx.threads)
    batch = ctx.data.validation.sample_batch(runtime.fixed_batch or 1)
    try:
        outs = runtime.run_all(batch)
    except Exception as e:
        shapes = ", ".join(f"{a.shape} {a.dtype}" for a in batch)
        raise ModelSourceError(
            f"{art.path} rejects input {shapes} ({first_line(e)}); "
            "set --input-shape / input_shape to what the model expects"
        ) from None
    finally:
        runtime.close()
    return [tuple(o.shape) for o in outs]


def _has_batchnorm(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())
