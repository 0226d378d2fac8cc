"""Chance levels and collapse: what each task's primary metric reads for a model that learned
nothing, on the data at hand, and the status an artifact gets at or near it."""

from __future__ import annotations

import numpy as np
import pytest

from modelpress.errors import ModelSourceError
from modelpress.evaluate.targets import decisions, recommend
from modelpress.evaluate.techniques import table
from modelpress.tasks import get_task


def _labels(counts: dict[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, c) for c, n in counts.items()]).astype(np.int64)


def _one_class_logits(n: int, k: int, cls: int) -> np.ndarray:
    out = np.zeros((n, k), dtype=np.float32)
    out[:, cls] = 5.0
    return out


# ---------------------------------------------------------------- classification


def test_classification_chance_is_the_most_common_class_share_not_one_over_k() -> None:
    """Unbalanced labels (60 % class 2): a model that answers class 2 for everything scores 0.6,
    far above 1/K = 0.25, and is still a model that learned nothing."""
    task = get_task("classification")
    labels = _labels({0: 40, 1: 60, 2: 240, 3: 60})
    chance = task.chance(labels)

    assert chance is not None and chance.value == pytest.approx(0.6)
    assert "most common class, 2" in chance.how
    metrics = task.metrics(_one_class_logits(len(labels), 4, 2), labels)
    assert metrics["top1"] == pytest.approx(0.6)
    why = task.collapse(metrics, {"top1": 0.95}, chance)
    assert why is not None and why.startswith("collapsed: top1 at chance level")
    assert "top1 0.6000" in why and "its parent's 0.9500" in why and "chance 0.6000" in why
    assert "answers class 2 for every sample" in why


def test_a_real_model_well_above_chance_is_not_collapsed() -> None:
    task = get_task("classification")
    labels = _labels({c: 36 for c in range(10)})
    chance = task.chance(labels)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(labels), 10)).astype(np.float32)
    right = rng.random(len(labels)) < 0.5  # half the samples right: a weak real model
    logits[right, labels[right]] += 10.0
    metrics = task.metrics(logits, labels)

    assert chance is not None and chance.value == pytest.approx(0.1)
    assert chance.up_to < 0.2  # 3 standard errors of 360 samples at p = 0.1: 0.05
    assert 0.5 <= metrics["top1"] < 0.6
    assert task.collapse(metrics, {"top1": 0.9}, chance) is None


def test_far_below_a_parent_well_above_chance_is_collapsed_with_both_figures() -> None:
    """The pruned dscnn of issue 20: 0.36 top-1 from a parent at 0.96, chance 0.10."""
    task = get_task("classification")
    chance = task.chance(_labels({c: 36 for c in range(10)}))

    why = task.collapse({"top1": 0.3556}, {"top1": 0.9583}, chance)
    assert why is not None and "keeps under 50% of its parent's gain over chance" in why
    assert "top1 0.3556" in why and "its parent's 0.9583" in why and "chance 0.1000" in why
    assert task.collapse({"top1": 0.60}, {"top1": 0.9583}, chance) is None
    # a parent at chance itself: nothing to fall from
    assert task.collapse({"top1": 0.2}, {"top1": 0.12}, chance) is None


def test_all_non_finite_outputs_are_counted_not_a_crash_and_collapsed() -> None:
    task = get_task("classification")
    labels = _labels({c: 10 for c in range(10)})
    nan = np.full((len(labels), 10), np.nan, dtype=np.float32)

    metrics = task.metrics(nan, labels)  # was: cannot reshape array of size 0
    assert metrics == {"samples": 100, "nonfinite_samples": 100}
    why = task.collapse(metrics, None, task.chance(labels))
    assert why is not None and "100 of 100 validation samples give non-finite outputs" in why

    some = _one_class_logits(len(labels), 10, 0)
    some[labels == 0] = np.eye(10)[0] * 5  # right on class 0 ...
    some[::4] = np.inf  # ... and 25 samples Inf
    metrics = task.metrics(some, labels)
    assert metrics["nonfinite_samples"] == 25
    why = task.collapse(metrics, None, task.chance(labels))
    assert why is not None and "25 of 100" in why and "over the other 75" in why


def test_a_detector_with_nan_outputs_is_counted_and_collapsed() -> None:
    import copy

    task = copy.copy(get_task("detection"))
    task.num_classes, task.input_hw = 3, (64, 64)
    labels = np.empty(5, dtype=object)
    for i in range(5):
        labels[i] = np.array([[1, 0.1, 0.1, 0.5, 0.5]], dtype=np.float32)
    boxes = np.full((5, 8, 4), np.nan, dtype=np.float32)
    scores = np.full((5, 8, 3), np.nan, dtype=np.float32)

    metrics = task.metrics([boxes, scores], labels)
    assert metrics == {"samples": 5, "nonfinite_samples": 5}
    why = task.collapse(metrics, {"map50_95": 0.3})
    assert why is not None and why.startswith("collapsed: 5 of 5 validation samples")
    boxes[1:], scores[1:] = 0.2, 0.5  # one image NaN
    metrics = task.metrics([boxes, scores], labels)
    assert metrics["nonfinite_samples"] == 1 and metrics["max_score"] == 0.5


@pytest.mark.parametrize("shape", [(4, 2, 5), (4, 10, 3)])
def test_an_output_that_is_not_one_vector_per_sample_is_refused(shape: tuple) -> None:
    from types import SimpleNamespace

    data = SimpleNamespace(num_classes=10, source="builtin:digits")
    with pytest.raises(ModelSourceError) as err:
        get_task("classification").check_outputs([shape], data, "m.py:build")
    shown = ", ".join(["B", *map(str, shape[1:])])
    assert f"m.py:build outputs ({shown}) per batch" in str(err.value)
    assert "--task fidelity" in str(err.value)
    # a convolutional head's (B, K, 1, 1) is one vector per sample
    get_task("classification").check_outputs([(4, 10, 1, 1)], data, "m.py:build")


# ---------------------------------------------------------------- binary, fidelity


def test_binary_chance_is_auc_one_half_with_the_splits_noise() -> None:
    task = get_task("binary")
    labels = _labels({0: 43, 1: 71})
    chance = task.chance(labels)

    assert chance is not None and chance.value == 0.5 and 0.6 < chance.up_to < 0.7
    constant = np.zeros((len(labels), 1), dtype=np.float32)
    metrics = task.metrics(constant, labels)
    assert metrics["auc"] == 0.5
    assert "auc at chance level" in (task.collapse(metrics, {"auc": 0.99}, chance) or "")
    good = (labels[:, None] * 4.0 - 2.0).astype(np.float32)
    assert task.collapse(task.metrics(good, labels), {"auc": 0.99}, chance) is None


def test_fidelity_chance_is_one_fixed_output_for_every_sample() -> None:
    """Post-ReLU features share a large common part: one fixed vector already reaches a high
    cosine to them; an artifact no closer than that has collapsed."""
    task = get_task("fidelity")
    rng = np.random.default_rng(0)
    base = np.maximum(rng.normal(size=(200, 32)), 0).astype(np.float32) + 0.2
    chance = task.chance(None, base)
    assert chance is not None and 0.6 < chance.value < 0.98

    constant = np.repeat(base.mean(axis=0, keepdims=True), len(base), axis=0)
    metrics = task.metrics(constant, None, reference=base)
    assert metrics["cosine"] == pytest.approx(chance.value, abs=0.01)
    assert "cosine at chance level" in (task.collapse(metrics, {"cosine": 1.0}, chance) or "")
    close = base + rng.normal(scale=0.05, size=base.shape).astype(np.float32)
    assert task.collapse(task.metrics(close, None, reference=base), {"cosine": 1.0}, chance) is None


# ---------------------------------------------------------------- never recommended, never best


def _entry(name: str, status: str, ms: float, mb: float, top1: float, **extra: object) -> dict:
    return {
        "name": name,
        "path": f"{name}.bin",
        "status": status,
        "precision": extra.pop("precision", "fp32"),
        "format": extra.pop("format", "onnx"),
        "latency_ms": {"median": ms, "batch": 1},
        "size_bytes": int(mb * 1e6),
        "metrics": {"top1": top1},
        "metric_delta_pt": 100 * (top1 - 0.95),
        "primary_metric": "top1",
        "notes": [],
        **extra,
    }


def test_a_collapsed_baseline_is_never_recommended() -> None:
    base = _entry("baseline", "collapsed", 1.0, 1.0, 0.10)
    base["notes"] = ["collapsed: top1 at chance level; top1 0.1000, chance 0.1028 (…)"]
    onnx = _entry("onnx-fp32", "collapsed", 0.5, 0.9, 0.10)

    rec, _ = recommend(base, [onnx], {})
    assert rec["name"] is None and rec["met"] is False
    assert rec["why"].startswith("nothing to recommend: no artifact measured ok")
    assert "the baseline collapsed: top1 at chance level" in rec["why"]


def test_best_for_and_decisions_leave_out_degraded_collapsed_and_slower_than_fp32() -> None:
    """Each would win one aim on its numbers: the static INT8 encoder at cosine 0.36 (smallest,
    degraded), the pruned model at chance (fastest, collapsed), a dynamic INT8 timed slower
    than its FP32 sibling (smaller than it)."""
    base = _entry("baseline", "ok", 2.0, 1.0, 0.95, format="torch")
    fp32 = _entry("onnx-fp32", "ok", 1.0, 0.9, 0.95)
    slower = {"sibling": "onnx-fp32", "ratio": 1.3}
    dyn = _entry("onnx-int8-dynamic", "ok", 1.3, 0.3, 0.95, precision="int8-dynamic")
    dyn["slower_than_fp32"] = slower
    static = _entry("onnx-int8", "degraded", 0.8, 0.25, 0.9501, precision="int8")
    pruned = _entry("sparse", "collapsed", 0.1, 0.9, 0.96, format="torch")
    arts = [fp32, dyn, static, pruned]
    steps = [
        {"id": e["name"], "status": e["status"], "artifact": e, "config": {"type": "x"}}
        for e in arts
    ]
    record = {"primary_metric": "top1", "baseline": base, "steps": steps}

    rows = {r["technique"]: r for r in table(record, [e["name"] for e in arts])}
    assert rows["onnx-fp32"]["best_for"] == ["size", "speed", "accuracy"]
    for name in ("onnx-int8-dynamic", "onnx-int8", "sparse"):
        assert rows[name]["best_for"] == [], name

    chosen = decisions(base, arts, {})
    assert chosen["fastest"]["artifact"] == "onnx-fp32"
    assert chosen["smallest"]["artifact"] == "onnx-fp32"
    assert recommend(base, arts, {})[0]["name"] == "onnx-fp32"


def test_training_did_not_learn_only_at_chance() -> None:
    from modelpress.tasks.base import Chance
    from modelpress.training import TrainResult

    chance = Chance("top1", 0.1028, 0.048, "the share of the most common class, 3, …")
    history = [{"epoch": 1}, {"epoch": 2}]
    stuck = TrainResult("top1", 0.1083, 2, history, chance=chance)
    assert stuck.did_not_learn and stuck.summary()["did_not_learn"] is True
    assert stuck.verdict() == (
        "did_not_learn: best validation top1 0.1083 (epoch 2 of 2) is at chance level, chance "
        "0.1028 (the share of the most common class, 3, …; up to 0.1508 counts as chance)"
    )
    learned = TrainResult("top1", 0.42, 2, history, chance=chance)
    assert not learned.did_not_learn and learned.verdict() is None
    assert TrainResult("top1", float("-inf"), 0, [], chance=chance).did_not_learn  # all NaN
