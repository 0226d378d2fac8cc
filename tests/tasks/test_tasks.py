"""Tasks as registered objects: each task's metrics, verification, confidence, losses and output
checks on hand-computed cases; the registry and its messages; the primary metric's direction as
targets and recommendations use it."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from helpers.cli import assert_one_line_error, run_cli
from modelpress.core import task_registry
from modelpress.core.recipe import VerifyConfig, build_recipe
from modelpress.errors import DataSourceError, ModelSourceError, RecipeError, StepError
from modelpress.evaluate import targets
from modelpress.evaluate.metrics import METRICS
from modelpress.report import plots, sections
from modelpress.sources.data import Dataset, Split
from modelpress.tasks import find_task, get_task, register_task, task_names
from modelpress.tasks.base import Task, counted
from modelpress.tasks.losses import binary_kd_loss, kd_loss

SAMPLE_RECORD = Path(__file__).parents[1] / "report" / "sample_record.json"

# 4 samples, 3 classes: rows 0, 1, 2 right; row 3 predicts 0 for a 1.
LOGITS = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 2], [2, 0, 1]], dtype=np.float32)
LABELS = np.array([0, 1, 2, 1])

# Binary: P(positive) and labels; positives outrank negatives in 3 of 4 pairs (AUC 0.75); at 0.5
# the predictions are 0, 1, 0, 1: one true positive, one false positive, one false negative.
P_POSITIVE = np.array([0.2, 0.6, 0.4, 0.9])
BINARY_LABELS = np.array([0, 0, 1, 1])


def _one_logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))[:, None].astype(np.float32)


def _dataset(labels: np.ndarray | None, num_classes: int | None = None) -> Dataset:
    def split(y: np.ndarray | None) -> Split:
        n = 4 if y is None else len(y)
        return Split([np.zeros((n, 3), np.float32)], y)

    return Dataset("npz:d.npz", split(labels), split(labels), split(labels), ["x"], num_classes)


# ---------------------------------------------------------------- metrics


def test_classification_metrics_by_hand() -> None:
    m = get_task("classification").metrics(LOGITS, LABELS)
    assert m["samples"] == 4 and "nonfinite_samples" not in m
    assert m["top1"] == pytest.approx(0.75)
    assert "top5" not in m  # 3 classes: top-5 would always be 1
    assert m["per_class"] == {"0": 1.0, "1": 0.5, "2": 1.0}
    assert m["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize("heads", [1, 2])
def test_binary_metrics_by_hand_from_one_logit_or_two(heads: int) -> None:
    logit = _one_logit(P_POSITIVE)
    outputs = logit if heads == 1 else np.concatenate([np.zeros_like(logit), logit], axis=1)
    m = get_task("binary").metrics(outputs, BINARY_LABELS)
    assert m["auc"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["threshold"] == 0.5


def test_fidelity_metrics_by_hand_against_the_reference() -> None:
    reference = np.array([[1, 0], [0, 1], [1, 1], [3, 4]], dtype=np.float32)
    outputs = np.array([[1, 0], [1, 0], [2, 2], [-3, -4]], dtype=np.float32)
    m = get_task("fidelity").metrics(outputs, None, reference=reference)
    assert m["cosine"] == pytest.approx((1 + 0 + 1 - 1) / 4)
    assert m["max_abs_diff"] == pytest.approx(8.0)  # row 3: |3 − (−3)|, |4 − (−4)|
    assert m["mean_abs_diff"] == pytest.approx((0 + 2 + 2 + 14) / 8)
    assert m["agreement"] == pytest.approx(0.5)  # rows 1 and 3 change their argmax
    with pytest.raises(ValueError, match="reference"):
        get_task("fidelity").metrics(outputs, None)


def test_a_row_of_nan_is_counted_and_left_out_of_the_scores() -> None:
    outputs = np.concatenate([LOGITS, [[np.nan, 0, 0]]]).astype(np.float32)
    m = get_task("classification").metrics(outputs, np.append(LABELS, 0))
    assert m["samples"] == 5 and m["nonfinite_samples"] == 1
    assert m["top1"] == pytest.approx(0.75)  # the 4 finite rows, as above
    assert counted(outputs)[1].tolist() == [True, True, True, True, False]


# ---------------------------------------------------------------- verification


def test_classification_and_binary_are_verified_by_agreement() -> None:
    child = LOGITS.copy()
    child[2] = [3, 0, 2]  # row 2 now says class 0: 3 of 4 rows agree with the parent
    result, problem = get_task("classification").verify(child, LOGITS, VerifyConfig())
    assert result["agreement"] == pytest.approx(0.75)
    assert result["judged_by"] == "agreement" and result["threshold"] == 0.9
    assert problem == "agreement with the parent is 0.750 (< 0.9)"
    lenient = VerifyConfig(min_agreement=0.7)
    assert get_task("classification").verify(child, LOGITS, lenient)[1] is None

    parent = np.array([[-1.0], [1.0], [1.0], [1.0]])  # one logit: its sign is the class
    child = np.array([[-2.0], [3.0], [-0.5], [0.1]])
    result, problem = get_task("binary").verify(child, parent, VerifyConfig())
    assert result["judged_by"] == "agreement" and result["agreement"] == pytest.approx(0.75)
    assert problem is not None and problem.startswith("agreement with the parent is 0.750")


def test_fidelity_is_verified_by_cosine_not_by_argmax() -> None:
    parent = np.array([[1, 0], [0, 1], [1, 1], [3, 4]], dtype=np.float32)
    child = np.array([[1, 0], [1, 0], [2, 2], [-3, -4]], dtype=np.float32)
    result, problem = get_task("fidelity").verify(child, parent, VerifyConfig(min_cosine=0.2))
    assert result["judged_by"] == "cosine" and result["threshold"] == 0.2
    assert result["cosine"] == pytest.approx(0.25) and result["agreement"] == pytest.approx(0.5)
    assert problem is None  # agreement 0.5 would fail; cosine 0.25 meets 0.2
    _, problem = get_task("fidelity").verify(child, parent, VerifyConfig(min_cosine=0.3))
    assert problem == "cosine with the parent is 0.250 (< 0.3)"


def test_a_retrained_child_is_reported_not_judged_but_nan_still_fails() -> None:
    child = LOGITS.copy()
    child[0, 0] = np.inf
    result, problem = get_task("classification").verify(child, LOGITS, VerifyConfig(), judge=False)
    assert result["judged_by"] is None and result["threshold"] is None
    assert problem == "1 non-finite outputs"


# ---------------------------------------------------------------- confidence


def test_confidence_is_the_probability_of_the_answer() -> None:
    ln3 = math.log(3)
    logits = np.array([[0, ln3], [0, 0]], dtype=np.float64)
    assert get_task("classification").confidence(logits) == pytest.approx([0.75, 0.5])
    four = np.zeros((1, 4))
    assert get_task("classification").confidence(four) == pytest.approx([0.25])
    binary = get_task("binary")
    one_logit = np.array([[ln3], [-ln3], [0.0]])  # P(positive) 0.75, 0.25, 0.5
    assert binary.confidence(one_logit) == pytest.approx([0.75, 0.75, 0.5])
    assert binary.confidence(logits) == pytest.approx([0.75, 0.5])  # softmax column 1
    with pytest.raises(StepError, match="task fidelity has no confidence"):
        get_task("fidelity").confidence(logits)


# ---------------------------------------------------------------- primary metric and direction


def test_each_task_names_its_primary_metric_and_direction() -> None:
    primaries = {name: get_task(name).primary for name in task_names()}
    assert primaries == {
        "classification": "top1",
        "binary": "auc",
        "fidelity": "cosine",
        "detection": "map50_95",
    }
    for name in task_names():
        task = get_task(name)
        assert task.higher_is_better is METRICS[task.primary].higher_is_better is True
        assert task.worse_by(0.80, 0.85) == pytest.approx(0.05)  # 5 points lower: worse


class _LowerIsBetter(Task):
    """A task judged by a metric where lower is better (as a detection loss or an error rate)."""

    name = "lower"
    primary = "max_abs_diff"

    def metrics(self, outputs: Any, labels: Any, reference: Any = None) -> dict[str, Any]:
        return {}


def _entry(name: str, value: float, latency: float) -> dict[str, Any]:
    return {
        "name": name,
        "status": "ok",
        "size_bytes": 1000,
        "latency_ms": {"median": latency, "batch": 1},
        "metrics": {"max_abs_diff": value},
    }


def test_targets_and_recommendations_follow_the_primary_direction() -> None:
    task = _LowerIsBetter()
    assert not task.higher_is_better and task.worse_by(0.3, 0.1) == pytest.approx(0.2)
    baseline = _entry("baseline", 0.010, 10.0)
    worse = _entry("worse", 0.015, 2.0)  # 0.5 pt higher: worse for this metric, and fastest
    better = _entry("better", 0.008, 5.0)  # 0.2 pt lower: better
    for entry in (baseline, worse, better):
        targets.annotate(entry, baseline, task.primary)
    assert worse["metric_delta_pt"] == pytest.approx(0.5)  # the record keeps value − baseline
    bound = {"max_accuracy_drop": 0.3}
    assert targets.check(worse, bound)["max_accuracy_drop"]["value"] == pytest.approx(0.5)
    assert targets.check(worse, bound)["max_accuracy_drop"]["met"] is False
    assert targets.check(better, bound)["max_accuracy_drop"] == {
        "target": 0.3,
        "value": 0.0,
        "met": True,
    }
    rec, _ = targets.recommend(baseline, [worse, better], bound)
    assert rec["name"] == "better"  # the faster one lost 0.5 pt
    decided = targets.decisions(baseline, [worse, better], bound)
    assert decided["fastest"]["artifact"] == "better"
    assert decided["closest_accuracy"]["artifact"] == "better"
    assert decided["closest_accuracy"]["why"].startswith("lowest max_abs_diff")


# ---------------------------------------------------------------- labels and outputs


def test_labels_are_held_and_batched_as_one_int64_per_sample() -> None:
    task = get_task("classification")
    held = task.label_tensor(LABELS.astype(np.int64))
    assert held.dtype == torch.int64 and held.shape == (4,)
    assert task.label_batch(held, torch.tensor([3, 1])).tolist() == [1, 1]


def test_label_checks_keep_their_messages() -> None:
    with pytest.raises(DataSourceError) as err:
        get_task("binary").check_labels(_dataset(np.array([0, 1, 2, 2])))
    assert str(err.value) == (
        "npz:d.npz: labels run 0..2 (3 classes) but task binary takes labels 0 and 1; use task: "
        "classification, or relabel"
    )
    with pytest.raises(DataSourceError, match="has no labels \\(y\\) but task is 'classification'"):
        get_task("classification").check_labels(_dataset(None))
    get_task("fidelity").check_labels(_dataset(None))  # needs none
    with pytest.raises(DataSourceError, match="task classification needs samples of two classes"):
        get_task("classification").check_labels(_dataset(np.zeros(4, np.int64)))


def test_output_checks_name_the_file_and_the_fix() -> None:
    two_classes = _dataset(np.array([0, 1, 0, 1]), num_classes=2)
    with pytest.raises(ModelSourceError) as err:
        get_task("classification").check_outputs([(8, 1)], two_classes, "m.onnx")
    assert "m.onnx outputs 1 values per sample" in str(err.value)
    assert "(or task: binary for its one logit)" in str(err.value)
    for width in (1, 2):
        get_task("binary").check_outputs([(8, width)], two_classes, "m.onnx")
    with pytest.raises(ModelSourceError) as err:
        get_task("binary").check_outputs([(8, 10)], two_classes, "m.onnx")
    assert str(err.value).startswith("m.onnx outputs 10 values per sample but task binary takes 1")
    assert "use task: classification" in str(err.value)
    get_task("fidelity").check_outputs([(8, 768)], _dataset(None), "encoder.onnx")  # any width


def test_binary_with_ten_outputs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli(
        "bench",
        "zoo:mlp",
        "--data",
        "builtin:breast_cancer",
        "--model-kwargs",
        '{"num_classes": 10}',
        "--json",
        str(tmp_path / "bench.json"),
        cwd=tmp_path,
    )
    assert_one_line_error(
        result,
        "zoo:mlp outputs 10 values per sample but task binary takes 1 (a logit) or 2",
        "give the model 1 or 2 outputs (num_classes in model_kwargs), or use task: classification",
    )
    assert not (tmp_path / "bench.json").exists()


# ---------------------------------------------------------------- training


def test_losses_by_task_and_head() -> None:
    labels = torch.tensor([0, 1, 1, 0])
    one = torch.tensor([[-1.0], [2.0], [0.5], [0.0]])
    got = get_task("binary").loss()(one, labels, [])
    assert got.item() == pytest.approx(
        nn.functional.binary_cross_entropy_with_logits(one.reshape(-1), labels.float()).item()
    )
    logits = torch.tensor(LOGITS)
    smoothed = get_task("classification").loss(0.1)(logits, torch.tensor(LABELS), [])
    expected = nn.functional.cross_entropy(logits, torch.tensor(LABELS), label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(expected.item())
    with pytest.raises(StepError, match="task fidelity has no labels"):
        get_task("fidelity").loss()


def test_kd_loss_takes_the_tasks_form() -> None:
    weights = {"temperature": 2.0, "hard_weight": 0.3, "soft_weight": 0.7}
    labels = torch.tensor([0, 1, 1, 0])
    student, teacher = torch.tensor([[-1.0], [2.0], [0.5], [0.0]]), torch.tensor([[1.0]] * 4)
    got = get_task("binary").kd_loss(student, teacher, labels, **weights)
    assert got.item() == pytest.approx(
        binary_kd_loss(student, teacher, labels, 2.0, 0.3, 0.7).item()
    )
    student2, teacher2 = torch.tensor(LOGITS), torch.tensor(LOGITS[::-1].copy())
    labels2 = torch.tensor(LABELS)
    for name in ("binary", "classification"):  # two logits or more: softened softmaxes
        got = get_task(name).kd_loss(student2, teacher2, labels2, **weights, standardize=True)
        want = kd_loss(student2, teacher2, labels2, 2.0, 0.3, 0.7, True)
        assert got.item() == pytest.approx(want.item())


class _TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 8)
        self.aux = nn.Linear(8, 5)  # an auxiliary head of num_classes outputs
        self.head = nn.Linear(8, 5)


def test_output_layers_pruning_keeps() -> None:
    order = ["body", "aux", "head"]
    task = get_task("classification")
    assert task.output_layers(_TwoHeads(), order, num_classes=5) == {"aux", "head"}
    assert task.output_layers(_TwoHeads(), order, num_classes=None) == {"head"}


# ---------------------------------------------------------------- registry and recipe


def test_an_unknown_task_names_the_closest_and_every_known_one() -> None:
    with pytest.raises(RecipeError) as err:
        get_task("clasification")
    assert str(err.value) == (
        "task 'clasification': Input should be a registered task: classification, binary, "
        "fidelity, detection (did you mean 'classification'?)"
    )
    assert find_task("nope") is None and find_task(None) is None
    with pytest.raises(RecipeError) as err:
        build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "task": "fidelty"})
    assert "registered task: classification, binary, fidelity, detection" in str(err.value)
    assert "(did you mean 'fidelity'?)" in str(err.value)


def test_a_registered_task_is_known_to_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(task_registry.REGISTRY, "ranking", None)  # removed again afterwards

    @register_task
    class Ranking(_LowerIsBetter):
        name = "ranking"

    assert task_names()[-1] == "ranking" and get_task("ranking").primary == "max_abs_diff"
    recipe = build_recipe({"model": "zoo:mlp", "data": "builtin:digits", "task": "ranking"})
    assert recipe.task == "ranking"


# ---------------------------------------------------------------- report pieces


def test_reports_ask_the_recorded_task() -> None:
    record = json.loads(SAMPLE_RECORD.read_text())
    assert record["task"] == "classification"
    headers = sections.progression(record).headers
    assert "agreement" in headers and "cosine" not in headers
    assert "confusion_matrix.png" in plots.render(record)

    fidelity = copy.deepcopy(record)
    fidelity["task"] = "fidelity"
    del fidelity["primary_metric"]  # an older record: the task answers
    assert sections.primary_key(fidelity) == "cosine"
    assert "cosine" in sections.progression(fidelity).headers
    binary = copy.deepcopy(record)
    binary["task"], binary["primary_metric"] = "binary", "auc"
    assert "confusion_matrix.png" not in plots.render(binary)
    unknown = {"task": "from-a-newer-modelpress"}
    assert sections.primary_key(unknown) == "top1"
