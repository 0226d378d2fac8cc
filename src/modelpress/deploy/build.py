"""Building a cascade: each stage into the bundle, calibrated and certified on the calibration
split, an optional meta-model fitted, the whole measured on the validation split.

1. every stage's scores on the calibration split — what its Task makes of its outputs
   (``Task.cascade_scores``) — temperature-scaled (``calibration.fit_temperature``);
2. each early stage's exits chosen by the Task's exit rule (``deploy/exits.py``) over a grid
   fixed in advance so that an exact binomial bound holds on the calibration items that reach
   it; with buckets, a certificate per bin at confidence ``1 − (1 − c) / B``. With several
   early stages the budget is split (a union bound: ``max_leakage / k`` at confidence
   ``1 − (1 − confidence) / k`` each), so the cascade's bound holds at ``max_leakage`` and
   ``confidence`` overall;
3. the last stage decides everything left (the Task's answer), unless a meta-model
   (``deploy/meta.py``) is asked for: it scores every item from the stages' scores and which
   stages ran, and decides the items that reach the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.deploy.exits import cascade_task, summary
from modelpress.deploy.models import bundle_stage, stage_name
from modelpress.deploy.routing import CascadeError, parse_buckets, sharpness
from modelpress.deploy.stage import Stage

if TYPE_CHECKING:
    from modelpress.deploy.runner import Cascade


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
    task: str | None = None,
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
    way what is calibrated and certified is the bundled file, in its runtime. ``task`` None: the
    task a cascade runs by default. ``trust``: the user's --trust-checkpoint-code, for
    checkpoints naming a factory."""
    from modelpress.deploy import evidence
    from modelpress.deploy import meta as metamodel
    from modelpress.deploy.calibration import calibrated_probs, fit_temperature
    from modelpress.deploy.evaluation import evaluate
    from modelpress.deploy.runner import Cascade
    from modelpress.sources.inputs import format_input_shape

    the_task, rule = cascade_task(task)
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
    one = rule.one_probability
    built: list[Stage] = []
    dataset, guard, y = None, {}, None
    reach: np.ndarray | None = None  # calibration items reaching the stage
    seen, classes = [], None
    scores: list[np.ndarray] = []  # each early stage's on every calibration item: the evidence
    try:
        for i, source in enumerate(stages):
            file, runtime, dataset = bundle_stage(
                source, i, out, data, threads, input_shape, the_task.name, trust
            )
            name = names[i] if names and i < len(names) else stage_name(stages, i)
            stage = Stage(name, file, 1.0, {}, None, runtime, task=the_task)
            built.append(stage)
            cal = dataset.calibration
            if cal.labels is None or not len(cal):
                raise CascadeError(f"{data}: a cascade calibrates on labelled calibration data")
            if i == 0:
                guard = rule.guard(positive, dataset, data)
                y = np.asarray(cal.labels).astype(np.int64)
                y = 1 - y if rule.flips(guard) else y
            stage.flip = rule.flips(guard)
            z = stage.scores(cal.inputs)
            k = 2 if z.ndim == 1 else z.shape[1]
            if classes is not None and k != classes:
                raise CascadeError(
                    f"stage {source} gives {k} classes and stage {stages[0]} {classes}; the "
                    "stages of a cascade share their classes"
                )
            classes = k
            if not one and k != len(guard["classes"]):
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
                    stage.buckets = rule.bucketed(
                        *bins, probs[reach], sub, y[reach], confidence=conf_each, **settings
                    )
                    stage.certificate = summary(stage.buckets)
                else:
                    stage.certificate = rule.certify(
                        probs[reach], y[reach], confidence=conf_each, **settings
                    )
                reach = reach[stage.route(probs[reach], sub, z[reach]) < 0]
        if dataset is None or y is None or classes is None:
            raise CascadeError("a cascade needs two stages at least (--stage FAST --stage PRECISE)")
        ran = np.zeros((len(y), len(built)), dtype=bool)
        for i, s in enumerate(seen):
            ran[:, i] = s.reshape(len(y), -1).any(axis=1)
        fitted = None
        if meta:
            deferred = np.zeros(len(y), dtype=bool)
            deferred[reach] = True
            fitted = metamodel.fit(
                meta,
                metamodel.features(seen, ran, one),
                y,
                deferred,
                binary=one,
                classes=classes,
                confidence=confidence,
                names=metamodel.feature_names([s.name for s in built], one, classes),
            )
        cal = dataset.calibration
        quality = sharpness(cal.inputs[0]) if bins and bins[0] == "quality" else None
        doc = {
            "data": data,
            "input_shape": input_shape,
            "inputs": format_input_shape(dataset.input_specs()),
            "evidence": evidence.write(out, scores, y, quality),
            "task": the_task.name,
            **guard,
            "bound": {
                "max_leakage": max_leakage,
                "confidence": confidence,
                "measure": rule.measure(guard),
                "split": f"{early} early stage(s): {leak_each:.4g} at confidence "
                f"{conf_each:.4g} each (union bound)",
                "positives": rule.positives(y),
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


def _reliability(z: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, Any]:
    """The reliability diagram's bins before (T = 1) and after temperature scaling."""
    from modelpress.deploy.calibration import calibrated_probs, reliability

    return {
        "before": reliability(calibrated_probs(z, 1.0), labels).to_dict(),
        "after": reliability(calibrated_probs(z, temperature), labels).to_dict(),
    }
