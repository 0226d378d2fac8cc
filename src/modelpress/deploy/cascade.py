"""A cascade: cheap stages decide the items they are sure of, the last stage (or a meta-model)
the rest.

Each stage is a deployed file run in its own runtime: ``cascade build`` takes any model source
the user names and puts a deployed file in the bundle (a torch model traced to TorchScript; an
``.onnx``, ``.tflite``, OpenVINO ``.xml``, ``.pt2`` or TorchScript file as it is). Building one:

1. every stage's scores on the calibration split — binary: the log-odds of the positive class;
   classification: its K logits — temperature-scaled (``calibration.fit_temperature``);
2. each early stage's exits chosen over a grid fixed in advance so that an exact binomial bound
   holds, on the calibration items that reach it:

   - binary: two thresholds (exit negative below ``low``, positive at or above ``high``, defer
     the band); the bound is on *leakage*, the share of positives exiting negative
     (``certify.choose_thresholds``);
   - classification: one top-1 confidence threshold; the bound is on the early exits' error
     rate, or with positive classes on the share of their items exiting as another class
     (``certify.choose_confidence_threshold``);
   - with buckets (``entropy:B`` — the stage's predictive entropy — or ``quality:B`` — the input's
     sharpness, the variance of its Laplacian), each of B bins (quantiles on calibration) gets a
     certificate of its own at confidence ``1 − (1 − c) / B``; a bin too small to certify
     defers everything.

   With several early stages the budget is split (a union bound: ``max_leakage / k`` at
   confidence ``1 − (1 − confidence) / k`` each), so the cascade's leakage is certified at
   ``max_leakage`` and ``confidence`` overall;
3. the last stage decides everything left (P(positive) ≥ 0.5, or the top class), unless a
   meta-model (``deploy/meta.py``) is asked for: it scores every item from the stages' scores
   and which stages ran, and decides the items that reach the end.

The bundle is a directory: the stage files, ``cascade.json`` (temperatures, thresholds, the
certificates, the meta-model, what was measured) and the calibration evidence. ``Cascade.load``
runs it again, once ``deploy/bundle.py`` and ``deploy/evidence.py`` have checked that it is what
its build wrote: a bundle travels between people, and nothing in it chooses code to run.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.deploy.bundle import BUNDLE_FILE
from modelpress.deploy.routing import (
    BUCKET_KINDS,
    MAX_BUCKETS,
    CascadeError,
    bucket_scores,
    class_logits,
    entropy,
    log_odds,
    parse_buckets,
    route,
    sharpness,
)

__all__ = [  # the scoring names live in deploy/routing.py; imported from here for convenience
    "BUCKET_KINDS",
    "BUNDLE_FILE",
    "MAX_BUCKETS",
    "Cascade",
    "CascadeError",
    "Stage",
    "bucket_scores",
    "build",
    "class_logits",
    "entropy",
    "evaluate",
    "log_odds",
    "parse_buckets",
    "sharpness",
]

TASKS = ("binary", "classification")


# ---------------------------------------------------------------------- stages


@dataclass
class Stage:
    name: str
    file: str  # the stage's file in the bundle
    temperature: float
    calibration: dict[str, Any]  # the temperature fit (NLL, ECE and reliability before/after)
    certificate: dict[str, Any] | None = None  # None: the last stage decides everything left
    runtime: Any = field(default=None, repr=False)
    buckets: dict[str, Any] | None = None  # {by, edges, certificates}: one certificate per bin
    task: str = "binary"
    flip: bool = False  # binary: the positive class is the model's class 0

    def scores(self, inputs: list[np.ndarray], batch: int = 256) -> np.ndarray:
        """Binary: (N,) log-odds of the positive class; classification: (N, K) logits."""
        out = self.runtime.predict_all(inputs, batch)[0]
        if self.task == "classification":
            return class_logits(out)
        z = log_odds(out)
        return -z if self.flip else z

    def probabilities(self, inputs: list[np.ndarray], batch: int = 256) -> np.ndarray:
        from modelpress.deploy.calibration import calibrated_probs

        return calibrated_probs(self.scores(inputs, batch), self.temperature)

    def route(self, probs: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
        """(N,) −1 defer, else the decision (0/1, or the class)."""
        score = None
        if self.buckets is not None:
            score = bucket_scores(self.buckets["by"], probs, inputs)
        return route(probs, self.certificate, self.buckets, score)


@dataclass
class Routed:
    """What the cascade did with a batch."""

    p: np.ndarray  # (N,) binary: final P(positive); classification: P(decided class)
    decision: np.ndarray  # (N,) 0 / 1, or the class
    stage: np.ndarray  # (N,) index of the stage that decided
    probs: np.ndarray | None = None  # classification: (N, K) final class probabilities
    meta_changed: int | None = None  # items where the meta-model overruled the last stage


class Cascade:
    def __init__(
        self,
        stages: list[Stage],
        meta: dict[str, Any],
        dataset: Any = None,
        meta_model: Any = None,
    ) -> None:
        self.stages, self.meta = stages, meta
        self.dataset = dataset  # the data as the stages loaded it (``load``'s ``data``)
        # the first stage's inputs, float N,C,H,W as the data gives them (set by ``load``)
        self.inputs: list[Any] | None = dataset.input_specs() if dataset is not None else None
        self.meta_model = meta_model  # deploy/meta.MetaModel or None

    @property
    def task(self) -> str:
        return self.meta.get("task", "binary")

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """The data's labels as the cascade counts them (binary: 1 = the positive class)."""
        y = np.asarray(labels).astype(np.int64)
        return 1 - y if self.task == "binary" and self.meta.get("positive_index") == 0 else y

    # ------------------------------------------------------------------ running
    def predict(self, inputs: list[np.ndarray]) -> Routed:
        from modelpress.deploy.meta import features

        n, last = len(inputs[0]), len(self.stages) - 1
        binary = self.task == "binary"
        decision = np.zeros(n, dtype=np.int64)
        stage = np.full(n, last, dtype=np.int64)
        final: np.ndarray | None = None
        seen: list[np.ndarray] = []  # every stage's probabilities, 0 where it did not run
        ran = np.zeros((n, len(self.stages)), dtype=bool)
        left = np.arange(n)
        for i, st in enumerate(self.stages):
            if not len(left):
                seen.append(seen[-1] * 0 if seen else np.zeros(n))
                continue
            sub = [a[left] for a in inputs]
            probs = st.probabilities(sub)
            if final is None:
                final = np.zeros((n, *probs.shape[1:]))
            mine = np.zeros((n, *probs.shape[1:]))
            mine[left], ran[left, i] = probs, True
            seen.append(mine)
            route = st.route(probs, sub)  # the last stage (no certificate) decides all left
            done = route >= 0
            final[left[done]], decision[left[done]] = probs[done], route[done]
            stage[left[done]] = i
            left = left[~done]
        assert final is not None or n == 0
        if final is None:
            final = np.zeros(n) if binary else np.zeros((n, 0))
        changed = None
        if self.meta_model is not None and n:
            mp = self.meta_model.predict(features(seen, ran, binary))
            reach = stage == last
            own = decision[reach]
            decision[reach] = self.meta_model.decide(mp[reach])
            changed = int((own != decision[reach]).sum())
            final = mp
        if binary:
            return Routed(final, decision, stage, meta_changed=changed)
        p = final[np.arange(n), decision] if n else np.zeros(0)
        return Routed(p, decision, stage, probs=final, meta_changed=changed)

    def close(self) -> None:
        for st in self.stages:
            if st.runtime is not None:
                st.runtime.close()

    # ------------------------------------------------------------------ bundle
    def save(self, bundle: Path) -> None:
        """cascade.json, sealed (``deploy/bundle.seal``): the digest of every file it names
        and of its own content."""
        from modelpress.deploy.bundle import FORMAT_VERSION, seal

        doc = {
            "format_version": FORMAT_VERSION,
            **{k: v for k, v in self.meta.items() if k not in ("meta_model", "integrity")},
            "stages": [
                {
                    "name": s.name,
                    "file": s.file,
                    "temperature": s.temperature,
                    "calibration": s.calibration,
                    "certificate": s.certificate,
                    "buckets": s.buckets,
                }
                for s in self.stages
            ],
            "meta_model": (
                self.meta_model.to_dict(bundle) if self.meta_model is not None else None
            ),
        }
        self.meta["meta_model"] = doc["meta_model"]
        tmp = bundle / f".{BUNDLE_FILE}.tmp"
        tmp.write_text(json.dumps(seal(bundle, doc), indent=2))
        tmp.replace(bundle / BUNDLE_FILE)

    @classmethod
    def load(
        cls,
        bundle: Path | str,
        data: str | None = None,
        threads: int | None = None,
        with_data: bool = True,
    ) -> Cascade:
        """The cascade in ``bundle``, each stage in its runtime (``data``: a source whose inputs
        fit the stages; default the one it was built on). ``with_data=False`` and no ``data``:
        no data is loaded (scoring new inputs needs only the stages' input shape).

        Before any stage opens, the bundle is checked as one received from someone else
        (``deploy/bundle.py``): every file it names lies inside it with the digest it was built
        with, cascade.json is as it was sealed, and every certificate is recounted from the
        calibration evidence (``deploy/evidence.py``). Any mismatch is one line."""
        from modelpress.deploy import evidence
        from modelpress.deploy.bundle import check_integrity, member, open_stage_file
        from modelpress.deploy.meta import MetaModel

        bundle = Path(bundle)
        doc = _read_doc(bundle)
        check_integrity(bundle, doc)
        stages = _stages_of(bundle, doc)
        evidence.verify(bundle, doc, stages, evidence.read(member(bundle, doc["evidence"], "")))
        specs = _input_specs(bundle, doc)
        dataset = None
        if with_data or data:
            from modelpress.core.recipe import DataConfig
            from modelpress.engine.context import load_configured_data

            dataset = load_configured_data(DataConfig(source=data or doc["data"]), specs)
            specs = specs or dataset.input_specs()
        try:
            for st in stages:
                path = member(bundle, st.file, "stage file")
                st.runtime, file_specs = open_stage_file(path, threads, specs)
                specs = specs or file_specs
            meta_model = None
            if doc.get("meta_model"):
                classes = len(doc.get("classes") or []) or 2
                meta_model = MetaModel.from_dict(
                    doc["meta_model"], bundle, doc["task"] == "binary", classes
                )
        except BaseException:
            for st in stages:
                if st.runtime is not None:
                    st.runtime.close()
            raise
        meta = {k: v for k, v in doc.items() if k != "stages"}
        cascade = cls(stages, meta, dataset, meta_model)
        cascade.inputs = specs
        return cascade


def _read_doc(bundle: Path) -> dict[str, Any]:
    path = bundle / BUNDLE_FILE
    if not path.is_file():
        raise CascadeError(
            f"{bundle}: not a cascade bundle (no {BUNDLE_FILE}); build one "
            "with modelpress cascade build"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise CascadeError(f"{path}: not a readable cascade description ({e})") from None
    if not isinstance(doc, dict):
        raise CascadeError(f"{path}: not a cascade description (a JSON object)")
    return doc


def _stages_of(bundle: Path, doc: dict[str, Any]) -> list[Stage]:
    """The bundle's stages as cascade.json describes them (runtimes not opened), every field
    checked: one line naming the stage and the field otherwise."""
    path = bundle / BUNDLE_FILE
    task = doc.get("task", "binary")
    if task not in TASKS:
        raise CascadeError(f"{path}: task {task!r} is not one a cascade runs ({TASKS})")
    specs = doc.get("stages")
    if not isinstance(specs, list) or len(specs) < 2:
        raise CascadeError(f"{path}: 'stages' must list two stages at least")
    if not isinstance(doc.get("evidence"), str):
        raise CascadeError(f"{path}: names no calibration evidence; rebuild the bundle")
    flip = task == "binary" and doc.get("positive_index") == 0
    stages = []
    last = len(specs) - 1
    for i, s in enumerate(specs):
        where = f"{path}: stage {i}"
        if not isinstance(s, dict):
            raise CascadeError(f"{where} is not an object")
        for key in ("name", "file"):
            if not isinstance(s.get(key), str):
                raise CascadeError(f"{where}: '{key}' must be a string")
        t = s.get("temperature")
        if not isinstance(t, int | float) or isinstance(t, bool) or not 0 < t < float("inf"):
            raise CascadeError(f"{where}: 'temperature' must be a positive number, not {t!r}")
        cert, buckets = s.get("certificate"), s.get("buckets")
        if i < last and not isinstance(cert, dict):
            raise CascadeError(f"{where}: an early stage needs its 'certificate'")
        if i == last and (cert is not None or buckets is not None):
            raise CascadeError(f"{where}: the last stage decides everything left; no certificate")
        if buckets is not None and not (
            isinstance(buckets, dict)
            and buckets.get("by") in BUCKET_KINDS
            and isinstance(buckets.get("edges"), list)
            and isinstance(buckets.get("certificates"), list)
            and len(buckets["certificates"]) == len(buckets["edges"]) + 1
        ):
            raise CascadeError(f"{where}: 'buckets' is not a set of bins with a certificate each")
        if buckets is not None and cert != _summary(buckets):
            raise CascadeError(f"{where}: its certificate is not the summary of its bins' own")
        calibration = s.get("calibration") if isinstance(s.get("calibration"), dict) else {}
        stages.append(
            Stage(s["name"], s["file"], float(t), calibration, cert, None, buckets, task, flip)
        )
    return stages


def _input_specs(bundle: Path, doc: dict[str, Any]) -> list[Any] | None:
    """The inputs the stages were built and calibrated on (None: a bundle without them)."""
    from modelpress.core.inputs import parse_input_shape
    from modelpress.errors import RecipeError

    shape = doc.get("inputs") or doc.get("input_shape")
    try:
        return parse_input_shape(shape) if shape else None
    except RecipeError as e:
        raise CascadeError(f"{bundle / BUNDLE_FILE}: 'inputs' {e}") from None


def open_model(
    source: str,
    data: str,
    threads: int | None,
    input_shape: str | None = None,
    task: str = "binary",
    trust: bool = False,
) -> tuple[Any, Any]:
    """(the context, the model as an artifact) for a model source the user named — never one a
    bundle names — through modelpress's loading: the data split as every command splits it
    (seed 0); ``trust``: the user's --trust-checkpoint-code."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.context import build_context

    recipe: dict[str, Any] = {"model": source, "data": data, "task": task}
    if input_shape:
        recipe["input_shape"] = input_shape
    if threads:
        recipe["evaluate"] = {"threads": threads}
    if trust:
        recipe["trust_checkpoint_code"] = True
    return build_context(build_recipe(recipe, source))


# ---------------------------------------------------------------------- build


def _positive(task: str, positive: list[str] | None, dataset: Any, data: str) -> dict[str, Any]:
    """The classes the cascade guards, as cascade.json keeps them."""
    k = dataset.num_classes or 2
    names = list(dataset.class_names or [str(i) for i in range(k)])

    def index(value: str) -> int:
        if value in names:
            return names.index(value)
        if value.lstrip("-").isdigit() and 0 <= int(value) < k:
            return int(value)
        raise CascadeError(
            f"--positive {value}: {data} has no such class; its classes are {', '.join(names)}"
        )

    if task == "binary":
        if k != 2:
            raise CascadeError(
                f"{data} has {k} classes and a binary cascade needs two; use --task "
                "classification (with --positive for the classes to guard)"
            )
        if positive and len(positive) > 1:
            raise CascadeError("--positive: a binary cascade has one positive class; give it once")
        at = index(positive[0]) if positive else 1
        return {"classes": names, "positive": [names[at]], "positive_index": at}
    chosen = sorted({index(v) for v in positive or []})
    return {
        "classes": names,
        "positive": [names[i] for i in chosen] or None,
        "positive_classes": chosen or None,
    }


def _certify(
    task: str,
    probs: np.ndarray,
    y: np.ndarray,
    *,
    max_leakage: float,
    confidence: float,
    positive_classes: list[int] | None,
    max_false_alarm: float | None,
) -> dict[str, Any]:
    from modelpress.deploy.certify import choose_confidence_threshold, choose_thresholds

    if task == "binary":
        cert = choose_thresholds(
            probs,
            y,
            max_leakage=max_leakage,
            confidence=confidence,
            max_false_alarm=max_false_alarm,
        )
    else:
        cert = choose_confidence_threshold(
            probs,
            y,
            max_error=max_leakage,
            confidence=confidence,
            positive_classes=positive_classes,
        )
    return cert.to_dict()


def _defer_everything(task: str, y: np.ndarray, max_leakage: float, confidence: float, why: str):
    """A certificate under which nothing exits (so nothing leaks), for a bin too small."""
    return {
        "kind": "binary" if task == "binary" else "confidence",
        "low": 0.0 if task == "binary" else None,
        "high": None,
        "positives": int((y == 1).sum()) if task == "binary" else 0,
        "passed": 0,
        "upper_bound": 0.0,
        "max_leakage": max_leakage,
        "confidence": confidence,
        "certified": True,
        "items": len(y),
        "deferred_share": 1.0,
        "exit_share": 0.0,
        "note": f"everything deferred: {why}",
    }


def _bucketed(
    task: str,
    kind: str,
    count: int,
    probs: np.ndarray,
    inputs: list[np.ndarray],
    y: np.ndarray,
    *,
    max_leakage: float,
    confidence: float,
    positive_classes: list[int] | None,
    max_false_alarm: float | None,
) -> dict[str, Any]:
    """A certificate per bin of ``kind`` (quantiles of the calibration items reaching the stage),
    each at confidence ``1 − (1 − confidence) / count``: all hold together at ``confidence``."""
    from modelpress.deploy.certify import CertificationError

    score = bucket_scores(kind, probs, inputs)
    edges = np.unique(np.quantile(score, np.linspace(0, 1, count + 1)[1:-1])).tolist()
    ids = np.digitize(score, edges)
    each = 1 - (1 - confidence) / (len(edges) + 1)
    certs = []
    for b in range(len(edges) + 1):
        mask = ids == b
        try:
            certs.append(
                _certify(
                    task,
                    probs[mask],
                    y[mask],
                    max_leakage=max_leakage,
                    confidence=each,
                    positive_classes=positive_classes,
                    max_false_alarm=max_false_alarm,
                )
            )
        except CertificationError as e:
            certs.append(_defer_everything(task, y[mask], max_leakage, each, str(e)))
        certs[-1]["items"] = int(mask.sum())
    return {"by": kind, "edges": edges, "confidence_each": each, "certificates": certs}


def _summary(buckets: dict[str, Any]) -> dict[str, Any]:
    """A bucketed stage's certificate as one: the worst bin's bound holds for the mixture."""
    certs = buckets["certificates"]
    items = sum(c["items"] for c in certs) or 1
    return {
        "kind": certs[0]["kind"],
        "low": None,
        "high": None,
        "bucketed": f"{len(certs)} bins of {buckets['by']}",
        "positives": sum(c["positives"] for c in certs),
        "passed": sum(c["passed"] for c in certs),
        "upper_bound": max(c["upper_bound"] for c in certs),
        "max_leakage": certs[0]["max_leakage"],
        "confidence": certs[0]["confidence"],
        "certified": all(c["certified"] for c in certs),
        "items": items,
        "deferred_share": sum(c["deferred_share"] * c["items"] for c in certs) / items,
        "measure": certs[0].get("measure", ""),
    }


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
    task: str = "binary",
    positive: list[str] | None = None,
    meta: str | None = None,
    buckets: str | None = None,
    max_false_alarm: float | None = None,
    trust: bool = False,
) -> tuple[Cascade, dict[str, Any]]:
    """Calibrate and certify ``stages`` (cheap to precise) on ``data``'s calibration split,
    fit the meta-model if asked, measure on its validation split, write the bundle to ``out``;
    (cascade, figures). A stage given as a deployed file is copied into the bundle as it is;
    one given as a torch model (a checkpoint, zoo:NAME) is traced to TorchScript there. Either
    way what is calibrated and certified is the bundled file, in its runtime. ``trust``: the
    user's --trust-checkpoint-code, for checkpoints naming a factory."""
    from modelpress.core.inputs import format_input_shape
    from modelpress.deploy import evidence
    from modelpress.deploy import meta as metamodel
    from modelpress.deploy.calibration import calibrated_probs, fit_temperature

    if task not in TASKS:
        raise CascadeError(f"--task {task}: a cascade runs {' or '.join(TASKS)}")
    if len(stages) < 2:
        raise CascadeError("a cascade needs two stages at least (--stage FAST --stage PRECISE)")
    missing = [s for s in stages if not Path(s).exists() and not s.startswith(("zoo:",))]
    if missing:
        raise CascadeError(f"stage file {missing[0]} not found")
    bins = parse_buckets(buckets)
    if meta:
        metamodel.check_kind(meta)
    if out.exists() and not out.is_dir():
        raise CascadeError(f"--out {out}: is a file; give a folder to write the bundle into")
    out.mkdir(parents=True, exist_ok=True)
    early = len(stages) - 1
    leak_each, conf_each = max_leakage / early, 1 - (1 - confidence) / early
    built: list[Stage] = []
    dataset, guard, y = None, {}, None
    reach: np.ndarray | None = None  # calibration items reaching the stage
    seen, classes = [], None
    scores: list[np.ndarray] = []  # each early stage's on every calibration item: the evidence
    try:
        for i, source in enumerate(stages):
            file, runtime, dataset = _bundle_stage(
                source, i, out, data, threads, input_shape, task, trust
            )
            stage = Stage(
                names[i] if names and i < len(names) else _stage_name(stages, i),
                file,
                1.0,
                {},
                None,
                runtime,
                task=task,
            )
            built.append(stage)
            cal = dataset.calibration
            if cal.labels is None or not len(cal):
                raise CascadeError(f"{data}: a cascade calibrates on labelled calibration data")
            if i == 0:
                guard = _positive(task, positive, dataset, data)
                stage.flip = guard.get("positive_index") == 0
                y = np.asarray(cal.labels).astype(np.int64)
                y = 1 - y if stage.flip else y
            stage.flip = built[0].flip
            z = stage.scores(cal.inputs)
            k = 2 if z.ndim == 1 else z.shape[1]
            if classes is not None and k != classes:
                raise CascadeError(
                    f"stage {source} gives {k} classes and stage {stages[0]} {classes}; the "
                    "stages of a cascade share their classes"
                )
            classes = k
            if task == "classification" and k != len(guard["classes"]):
                raise CascadeError(
                    f"stage {source} gives {k} classes and {data} has {len(guard['classes'])}"
                )
            fit = fit_temperature(z, y)
            stage.temperature = float(fit.temperature)
            stage.calibration = {
                **fit.to_dict(),
                "reliability": _reliability(z, y, fit.temperature),
            }
            probs = calibrated_probs(z, stage.temperature)
            mine = np.zeros_like(probs)
            reach = np.arange(len(cal)) if reach is None else reach
            mine[reach] = probs[reach]
            seen.append(mine)
            if i < early:
                scores.append(z)
                sub = [a[reach] for a in cal.inputs]
                settings = {
                    "max_leakage": leak_each,
                    "positive_classes": guard.get("positive_classes"),
                    "max_false_alarm": max_false_alarm,
                }
                if bins:
                    stage.buckets = _bucketed(
                        task, *bins, probs[reach], sub, y[reach], confidence=conf_each, **settings
                    )
                    stage.certificate = _summary(stage.buckets)
                else:
                    stage.certificate = _certify(
                        task, probs[reach], y[reach], confidence=conf_each, **settings
                    )
                reach = reach[stage.route(probs[reach], sub) < 0]
        assert dataset is not None and y is not None and classes is not None
        ran = np.zeros((len(y), len(built)), dtype=bool)
        for i, s in enumerate(seen):
            ran[:, i] = s.reshape(len(y), -1).any(axis=1)
        fitted = None
        if meta:
            deferred = np.zeros(len(y), dtype=bool)
            deferred[reach] = True
            fitted = metamodel.fit(
                meta,
                metamodel.features(seen, ran, task == "binary"),
                y,
                deferred,
                binary=task == "binary",
                classes=classes,
                confidence=confidence,
                names=metamodel.feature_names([s.name for s in built], task == "binary", classes),
            )
        cal = dataset.calibration
        quality = sharpness(cal.inputs[0]) if bins and bins[0] == "quality" else None
        doc = {
            "data": data,
            "input_shape": input_shape,
            "inputs": format_input_shape(dataset.input_specs()),
            "evidence": evidence.write(out, scores, y, quality),
            "task": task,
            **guard,
            "bound": {
                "max_leakage": max_leakage,
                "confidence": confidence,
                "measure": _measure(task, guard),
                "split": f"{early} early stage(s): {leak_each:.4g} at confidence "
                f"{conf_each:.4g} each (union bound)",
                "positives": int((y == 1).sum()) if task == "binary" else None,
            },
        }
        cascade = Cascade(built, doc, dataset, fitted)
        figures = evaluate(cascade, dataset.validation.inputs, dataset.validation.labels)
    except BaseException:
        for st in built:
            st.runtime.close()
        raise
    cascade.meta["validation"] = figures
    cascade.save(out)
    return cascade, figures


def _measure(task: str, guard: dict[str, Any]) -> str:
    if task == "binary":
        return f"leakage: items of class {guard['positive'][0]} exiting early as negative"
    if guard.get("positive"):
        return f"items of {', '.join(guard['positive'])} exiting early as another class"
    return "errors among early exits"


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


def _bundle_stage(
    source: str,
    index: int,
    out: Path,
    data: str,
    threads: int | None,
    input_shape: str | None,
    task: str,
    trust: bool,
) -> tuple[str, Any, Any]:
    """(the stage's file name in the bundle, its runtime on that file, the data shaped for it).
    A deployed file is copied (OpenVINO's .bin with its .xml); a torch model the user named is
    traced to TorchScript, checked against the eager model on a real batch."""
    from modelpress.core.inputs import parse_input_shape
    from modelpress.core.recipe import DataConfig
    from modelpress.deploy.bundle import deployed_kind, open_stage_file
    from modelpress.engine.context import load_configured_data
    from modelpress.errors import StepError
    from modelpress.steps.torchscript import TorchScriptConfig, to_torchscript

    src = Path(source)
    specs = parse_input_shape(input_shape) if input_shape else None
    kind = deployed_kind(src) if src.is_file() else None
    if kind is not None:
        name = f"stage{index}-{src.name}"
        shutil.copyfile(src, out / name)
        if kind == "openvino":
            weights = src.with_suffix(".bin")
            if not weights.is_file():
                raise CascadeError(f"stage {source}: its weights {weights} are missing")
            shutil.copyfile(weights, out / Path(name).with_suffix(".bin"))
        dataset = None
        if kind not in ("onnx", "tflite") and specs is None:  # shapes from the data
            dataset = load_configured_data(DataConfig(source=data), None)
            specs = dataset.input_specs()
        runtime, specs = open_stage_file(out / name, threads, specs)
        if dataset is None:
            try:
                dataset = load_configured_data(DataConfig(source=data), specs)
            except BaseException:
                runtime.close()
                raise
        return name, runtime, dataset
    ctx, artifact = open_model(source, data, threads, input_shape, task, trust)
    if artifact.module is None:
        raise CascadeError(f"stage {source}: not a torch model modelpress can bundle")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", src.stem if src.suffix else source).strip("._")
    name = f"stage{index}-{stem or 'model'}.ts"
    try:
        to_torchscript(artifact, TorchScriptConfig(lite=False), ctx, out / name)
    except StepError as e:
        raise CascadeError(
            f"stage {source}: cannot be traced to TorchScript for the bundle ({e}); export it "
            "yourself (.onnx, .tflite, .pt2) and pass that file"
        ) from None
    runtime, _ = open_stage_file(out / name, threads, ctx.input_specs)
    return name, runtime, ctx.data


# ---------------------------------------------------------------------- measuring


def _scores(task: str, labels: np.ndarray, p: np.ndarray, decision: np.ndarray) -> dict:
    """AUC, F1, P, R (binary; macro over classes for classification, plus accuracy)."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    if task == "binary":
        both = len(np.unique(labels)) == 2
        return {
            "auc": float(roc_auc_score(labels, p)) if both else None,
            "f1": float(f1_score(labels, decision, zero_division=0)),
            "precision": float(precision_score(labels, decision, zero_division=0)),
            "recall": float(recall_score(labels, decision, zero_division=0)),
            "accuracy": float((labels == decision).mean()),
        }
    auc = None
    if p.ndim == 2 and len(np.unique(labels)) == p.shape[1]:
        rows = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        auc = float(roc_auc_score(labels, rows, multi_class="ovr"))
    kw = {"average": "macro", "zero_division": 0}
    return {
        "auc": auc,
        "f1": float(f1_score(labels, decision, **kw)),
        "precision": float(precision_score(labels, decision, **kw)),
        "recall": float(recall_score(labels, decision, **kw)),
        "accuracy": float((labels == decision).mean()),
    }


def _leakage(cascade: Cascade, labels: np.ndarray, routed: Routed) -> dict[str, Any]:
    """What the certificate bounds, measured: binary, positives exiting early as negative;
    classification, early exits' errors (or positive-class items exiting as another class)."""
    early = routed.stage < len(cascade.stages) - 1
    if cascade.task == "binary":
        trials = labels == 1
        failed = early & trials & (routed.decision == 0)
    elif cascade.meta.get("positive_classes"):
        pos = cascade.meta["positive_classes"]
        trials = np.isin(labels, pos)
        failed = early & trials & ~np.isin(routed.decision, pos)
    else:
        trials = early
        failed = early & (routed.decision != labels)
    n = int(trials.sum())
    return {
        "leakage": int(failed.sum()) / n if n else None,
        "leaked": int(failed.sum()),
        "positives": n,
    }


SINGLE_ITEMS = 100  # items timed one at a time for the batch-1 latency


def _single(fn: Any, inputs: list[np.ndarray]) -> dict[str, float]:
    """p50 / p90 ms of ``fn`` on one item at a time (the first ``SINGLE_ITEMS`` items, after
    one warm-up call): a cascade's latency depends on the way each item goes."""
    n = min(SINGLE_ITEMS, len(inputs[0]))
    if not n:
        return {"p50": float("nan"), "p90": float("nan")}
    fn([a[:1] for a in inputs])
    times = []
    for i in range(n):
        item = [a[i : i + 1] for a in inputs]
        start = time.perf_counter()
        fn(item)
        times.append(1000 * (time.perf_counter() - start))
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90))}


def evaluate(
    cascade: Cascade, inputs: list[np.ndarray], labels: np.ndarray, repeats: int = 3
) -> dict[str, Any]:
    """The cascade and each stage alone on ``inputs``: AUC, F1, P, R, leakage, deferred and
    stage shares, the time per item and throughput of each (whole-split passes, median of
    ``repeats``, stages in their runtimes), and their batch-1 latency (p50 / p90)."""

    def timed(fn: Any) -> tuple[float, Any]:
        best, result = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            best.append(time.perf_counter() - start)
        return float(np.median(best)), result

    y = cascade.labels(labels)
    task, n, last = cascade.task, len(y), len(cascade.stages) - 1
    seconds, routed = timed(lambda: cascade.predict(inputs))
    score = routed.p if task == "binary" else routed.probs
    figures: dict[str, Any] = {
        "cascade": {
            **_scores(task, y, score, routed.decision),
            **_leakage(cascade, y, routed),
            "deferred": float((routed.stage == last).mean()),
            "stage_share": [float((routed.stage == i).mean()) for i in range(last + 1)],
            "ms_per_item": 1000 * seconds / n,
            "throughput_per_s": n / seconds,
            "single_ms": _single(cascade.predict, inputs),
            "items": n,
        },
        "stages": [],
    }
    if routed.meta_changed is not None:
        figures["cascade"]["meta_decisions"] = float((routed.stage == last).mean())
        figures["cascade"]["meta_changed"] = routed.meta_changed
    for st in cascade.stages:
        s, p = timed(lambda st=st: st.probabilities(inputs))
        decision = (p >= 0.5).astype(np.int64) if p.ndim == 1 else p.argmax(axis=1)
        figures["stages"].append(
            {
                "name": st.name,
                "alone": {
                    **_scores(task, y, p, decision),
                    "ms_per_item": 1000 * s / n,
                    "throughput_per_s": n / s,
                    "single_ms": _single(st.probabilities, inputs),
                },
            }
        )
    return figures
