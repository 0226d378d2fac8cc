"""A binary cascade: cheap stages decide the items they are sure of, the last stage the rest.

Each stage is any model source modelpress loads (``.onnx``, ``.tflite``, a modelpress
checkpoint, a run's artifact), run in its own runtime. Building one:

1. every stage's log-odds of the positive class on the calibration split, temperature-scaled
   (``calibration.fit_temperature``);
2. each early stage's two thresholds (exit negative below ``low``, positive at or above
   ``high``, defer the band) chosen over a grid fixed in advance so that the exact binomial
   bound on its leakage holds (``certify.choose_thresholds``), on the calibration items that
   reach it; with several early stages the budget is split (a union bound: leakage
   ``max_leakage / k`` at confidence ``1 − (1 − confidence) / k`` each), so the cascade's
   leakage is certified at ``max_leakage`` and ``confidence`` overall;
3. the last stage decides everything left at P(positive) ≥ 0.5.

The bundle is a directory: the stage files and ``cascade.json`` (temperatures, thresholds, the
certificates, what was measured). ``Cascade.load(bundle)`` runs it again on new data.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.errors import ModelpressError

BUNDLE_FILE = "cascade.json"
FORMAT_VERSION = 1


class CascadeError(ModelpressError):
    """A cascade that cannot be built or loaded as asked."""


def log_odds(outputs: np.ndarray) -> np.ndarray:
    """(N,) log-odds of the positive class from a binary head: one logit, or two (z1 − z0)."""
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return flat[:, 0]
    if flat.shape[1] == 2:
        return flat[:, 1] - flat[:, 0]
    raise CascadeError(
        f"a binary cascade stage gives 1 or 2 outputs per item, not {flat.shape[1]}; "
        "use binary models (task binary)"
    )


@dataclass
class Stage:
    name: str
    file: str  # the stage's file in the bundle
    temperature: float
    calibration: dict[str, Any]  # the temperature fit (NLL and ECE before and after)
    certificate: dict[str, Any] | None = None  # None: the last stage decides everything left
    runtime: Any = field(default=None, repr=False)

    def probabilities(self, inputs: list[np.ndarray], batch: int = 256) -> np.ndarray:
        from modelpress.deploy.calibration import calibrated_probs

        z = log_odds(self.runtime.predict_all(inputs, batch)[0])
        return calibrated_probs(z, self.temperature)


@dataclass
class Routed:
    """What the cascade did with a batch."""

    p: np.ndarray  # (N,) calibrated P(positive) of the stage that decided
    decision: np.ndarray  # (N,) 0 / 1
    stage: np.ndarray  # (N,) index of the stage that decided


class Cascade:
    def __init__(self, stages: list[Stage], meta: dict[str, Any], dataset: Any = None) -> None:
        self.stages, self.meta = stages, meta
        self.dataset = dataset  # the data as the stages loaded it (``load``'s ``data``)

    # ------------------------------------------------------------------ running
    def predict(self, inputs: list[np.ndarray]) -> Routed:
        n = len(inputs[0])
        p = np.zeros(n)
        decision = np.zeros(n, dtype=np.int64)
        stage = np.full(n, len(self.stages) - 1, dtype=np.int64)
        left = np.arange(n)
        for i, st in enumerate(self.stages):
            if not len(left):
                break
            probs = st.probabilities([a[left] for a in inputs])
            if st.certificate is None:  # the last stage: everything left
                p[left], decision[left], stage[left] = probs, probs >= 0.5, i
                break
            route = _route(probs, st.certificate)
            done = route >= 0
            p[left[done]], decision[left[done]] = probs[done], route[done]
            stage[left[done]] = i
            left = left[~done]
        return Routed(p, decision, stage)

    def close(self) -> None:
        for st in self.stages:
            if st.runtime is not None:
                st.runtime.close()

    # ------------------------------------------------------------------ bundle
    def save(self, bundle: Path) -> None:
        doc = {
            "format_version": FORMAT_VERSION,
            **self.meta,
            "stages": [
                {
                    "name": s.name,
                    "file": s.file,
                    "temperature": s.temperature,
                    "calibration": s.calibration,
                    "certificate": s.certificate,
                }
                for s in self.stages
            ],
        }
        tmp = bundle / f".{BUNDLE_FILE}.tmp"
        tmp.write_text(json.dumps(doc, indent=2))
        tmp.replace(bundle / BUNDLE_FILE)

    @classmethod
    def load(
        cls, bundle: Path | str, data: str | None = None, threads: int | None = None
    ) -> Cascade:
        """The cascade in ``bundle``, each stage in its runtime (``data``: a source whose inputs
        fit the stages; default the one it was built on)."""
        bundle = Path(bundle)
        path = bundle / BUNDLE_FILE
        if not path.is_file():
            raise CascadeError(
                f"{bundle}: not a cascade bundle (no {BUNDLE_FILE}); build one "
                "with modelpress cascade build"
            )
        try:
            doc = json.loads(path.read_text())
            specs = doc["stages"]
        except (ValueError, KeyError) as e:
            raise CascadeError(f"{path}: not a readable cascade description ({e})") from None
        stages, dataset = [], None
        for s in specs:
            file = (bundle / s["file"]).resolve()
            if bundle.resolve() not in file.parents:
                raise CascadeError(f"{path}: stage file {s['file']} lies outside the bundle")
            runtime, dataset = open_stage(
                str(file), data or doc["data"], threads, doc.get("input_shape")
            )
            stages.append(
                Stage(
                    s["name"],
                    s["file"],
                    float(s["temperature"]),
                    s["calibration"],
                    s.get("certificate"),
                    runtime,
                )
            )
        return cls(stages, {k: v for k, v in doc.items() if k != "stages"}, dataset)


def _route(probs: np.ndarray, certificate: dict[str, Any]) -> np.ndarray:
    out = np.full(len(probs), -1, dtype=np.int64)
    out[probs < certificate["low"]] = 0
    if certificate.get("high") is not None:
        out[probs >= certificate["high"]] = 1
    return out


def open_stage(
    source: str, data: str, threads: int | None, input_shape: str | None = None
) -> tuple[Any, Any]:
    """(the stage's runtime, the data as this stage loads it), through modelpress's loading:
    any model source, the data split as every command splits it (seed 0)."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.context import build_context
    from modelpress.runtimes import runtime_for

    recipe: dict[str, Any] = {"model": source, "data": data, "task": "binary"}
    if input_shape:
        recipe["input_shape"] = input_shape
    if threads:
        recipe["evaluate"] = {"threads": threads}
    ctx, artifact = build_context(build_recipe(recipe, source))
    return runtime_for(artifact, ctx.threads), ctx.data


# ---------------------------------------------------------------------- build


def build(
    stages: list[str],
    data: str,
    out: Path,
    *,
    max_leakage: float,
    confidence: float,
    input_shape: str | None = None,
    threads: int | None = None,
    names: list[str] | None = None,
) -> tuple[Cascade, dict[str, Any]]:
    """Calibrate and certify ``stages`` (cheap to precise) on ``data``'s calibration split,
    measure on its validation split, write the bundle to ``out``; (cascade, figures)."""
    from modelpress.deploy.calibration import fit_temperature
    from modelpress.deploy.certify import choose_thresholds

    if len(stages) < 2:
        raise CascadeError("a cascade needs two stages at least (--stage FAST --stage PRECISE)")
    missing = [s for s in stages if not Path(s).exists() and not s.startswith(("zoo:",))]
    if missing:
        raise CascadeError(f"stage file {missing[0]} not found")
    out.mkdir(parents=True, exist_ok=True)
    early = len(stages) - 1
    leak_each, conf_each = max_leakage / early, 1 - (1 - confidence) / early
    built: list[Stage] = []
    dataset = None
    reach = None  # calibration items reaching the stage
    for i, source in enumerate(stages):
        runtime, dataset = open_stage(source, data, threads, input_shape)
        cal = dataset.calibration
        if cal.labels is None or not len(cal):
            raise CascadeError(f"{data}: a cascade calibrates on labelled calibration data")
        z = log_odds(runtime.predict_all(cal.inputs, 256)[0])
        fit = fit_temperature(z, cal.labels)
        file = _copy_stage(source, out, i)
        stage = Stage(
            names[i] if names and i < len(names) else _stage_name(stages, i),
            file,
            float(fit.temperature),
            {**fit.to_dict(), "reliability": _reliability(z, cal.labels, fit.temperature)},
            None,
            runtime,
        )
        if i < early:
            from modelpress.deploy.calibration import calibrated_probs

            reach = np.arange(len(cal)) if reach is None else reach
            p = calibrated_probs(z[reach], stage.temperature)
            cert = choose_thresholds(
                p, cal.labels[reach], max_leakage=leak_each, confidence=conf_each
            )
            stage.certificate = cert.to_dict()
            route = _route(p, stage.certificate)
            reach = reach[route < 0]
        built.append(stage)
    meta = {
        "data": data,
        "input_shape": input_shape,
        "task": "binary",
        "bound": {
            "max_leakage": max_leakage,
            "confidence": confidence,
            "split": f"{early} early stage(s): leakage {leak_each:.4g} at confidence "
            f"{conf_each:.4g} each (union bound)",
            "positives": int((dataset.calibration.labels == 1).sum()),
        },
    }
    cascade = Cascade(built, meta)
    figures = evaluate(cascade, dataset.validation.inputs, dataset.validation.labels)
    cascade.meta["validation"] = figures
    cascade.save(out)
    return cascade, figures


def _reliability(z: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, Any]:
    """The reliability diagram's bins before (T = 1) and after temperature scaling."""
    from modelpress.deploy.calibration import calibrated_probs, reliability

    return {
        "before": reliability(calibrated_probs(z, 1.0), labels).to_dict(),
        "after": reliability(calibrated_probs(z, temperature), labels).to_dict(),
    }


def whole(cascade: Cascade) -> tuple[list[np.ndarray], np.ndarray]:
    """Every item of the data the cascade was loaded with (all three splits: ``cascade eval``
    is given held-out data)."""
    data = cascade.dataset
    if data is None:
        raise CascadeError("the cascade was loaded without data")
    parts = (data.train, data.calibration, data.validation)
    if any(p.labels is None for p in parts):
        raise CascadeError(f"{data.source}: evaluating a cascade needs labelled data")
    inputs = [np.concatenate([p.inputs[i] for p in parts]) for i in range(len(parts[0].inputs))]
    return inputs, np.concatenate([p.labels for p in parts])


def _stage_name(stages: list[str], i: int) -> str:
    """A stage's file stem; numbered when two stages share one (model-int8, model-fp32 …)."""
    stems = [Path(s).stem for s in stages]
    return stems[i] if stems.count(stems[i]) == 1 else f"{i}:{stems[i]}"


def _copy_stage(source: str, out: Path, index: int) -> str:
    """The stage's file copied into the bundle (OpenVINO's .bin with its .xml)."""
    src = Path(source)
    if not src.is_file():
        raise CascadeError(
            f"stage {source}: a cascade stage is a model file (.onnx, .tflite, "
            ".pt checkpoint, .pt2)"
        )
    name = f"stage{index}-{src.name}"
    shutil.copyfile(src, out / name)
    if src.suffix == ".xml" and src.with_suffix(".bin").is_file():
        shutil.copyfile(src.with_suffix(".bin"), out / Path(name).with_suffix(".bin"))
    return name


# ---------------------------------------------------------------------- measuring


def evaluate(
    cascade: Cascade, inputs: list[np.ndarray], labels: np.ndarray, repeats: int = 3
) -> dict[str, Any]:
    """The cascade and each stage alone on ``inputs``: AUC, F1, P, R, leakage, deferred and
    stage shares, and the time per item and throughput of each (whole-split passes, median of
    ``repeats``, stages in their runtimes)."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    def scores(p: np.ndarray, decision: np.ndarray) -> dict[str, Any]:
        both = len(np.unique(labels)) == 2
        return {
            "auc": float(roc_auc_score(labels, p)) if both else None,
            "f1": float(f1_score(labels, decision, zero_division=0)),
            "precision": float(precision_score(labels, decision, zero_division=0)),
            "recall": float(recall_score(labels, decision, zero_division=0)),
        }

    def timed(fn: Any) -> tuple[float, Any]:
        best, result = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            best.append(time.perf_counter() - start)
        return float(np.median(best)), result

    n = len(labels)
    seconds, routed = timed(lambda: cascade.predict(inputs))
    positives = labels == 1
    early = routed.stage < len(cascade.stages) - 1
    leaked = int((early & positives & (routed.decision == 0)).sum())
    figures: dict[str, Any] = {
        "cascade": {
            **scores(routed.p, routed.decision),
            "leakage": leaked / int(positives.sum()) if positives.any() else None,
            "leaked": leaked,
            "positives": int(positives.sum()),
            "deferred": float((routed.stage == len(cascade.stages) - 1).mean()),
            "stage_share": [float((routed.stage == i).mean()) for i in range(len(cascade.stages))],
            "ms_per_item": 1000 * seconds / n,
            "throughput_per_s": n / seconds,
            "items": n,
        },
        "stages": [],
    }
    for st in cascade.stages:
        s, p = timed(lambda st=st: st.probabilities(inputs))
        figures["stages"].append(
            {
                "name": st.name,
                "alone": {
                    **scores(p, (p >= 0.5).astype(np.int64)),
                    "ms_per_item": 1000 * s / n,
                    "throughput_per_s": n / s,
                },
            }
        )
    return figures
