import numpy as np
import pytest

from modelpress.core.recipe import VerifyConfig
from modelpress.evaluate.compare import compare_outputs
from modelpress.evaluate.metrics import METRICS
from modelpress.tasks import get_task, task_names


def test_classification_top1_top5_per_class_and_confusion() -> None:
    # 4 samples, 6 classes; rows 0 and 1 right, row 2 wrong but in the top 5, row 3 wrong.
    logits = np.array(
        [
            [9, 1, 0, 0, 0, 0],
            [0, 9, 1, 0, 0, 0],
            [9, 8, 7, 6, 5, 0],
            [9, 0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    labels = np.array([0, 1, 4, 5])
    m = get_task("classification").metrics(logits, labels)
    assert m["top1"] == pytest.approx(0.5)
    assert m["top5"] == pytest.approx(0.75)
    assert m["per_class"] == {"0": 1.0, "1": 1.0, "4": 0.0, "5": 0.0}
    assert m["confusion_matrix"][4][0] == 1 and m["confusion_matrix"][5][0] == 1


def test_binary_metrics_from_two_logits_and_from_one() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.7, 0.4, 0.9])  # P(positive)
    one_logit = np.log(p1 / (1 - p1))[:, None]
    two_logits = np.stack([np.zeros(5), one_logit[:, 0]], axis=1)
    for outputs in (one_logit, two_logits):
        m = get_task("binary").metrics(outputs.astype(np.float32), labels)
        # positives ranked above negatives in 5 of 6 pairs
        assert m["auc"] == pytest.approx(5 / 6)
        assert m["precision"] == pytest.approx(2 / 3)  # predicted positive: 0.6, 0.7, 0.9
        assert m["recall"] == pytest.approx(2 / 3)
        assert m["f1"] == pytest.approx(2 / 3)
        assert m["accuracy"] == pytest.approx(3 / 5)


def test_fidelity_against_a_reference() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    out = np.array([[1.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    m = get_task("fidelity").metrics(out, None, reference=ref)
    assert m["cosine"] == pytest.approx(0.0)  # +1 and -1
    assert m["max_abs_diff"] == pytest.approx(4.0)
    assert m["mean_abs_diff"] == pytest.approx(1.0)
    assert m["agreement"] == pytest.approx(0.5)  # row 2 flips from column 1 to column 0


def test_nonfinite_outputs_are_counted_not_averaged() -> None:
    logits = np.array([[5, 0], [np.nan, 0], [0, 5]], dtype=np.float32)
    m = get_task("classification").metrics(logits, np.array([0, 0, 1]))
    assert m["nonfinite_samples"] == 1
    assert m["top1"] == pytest.approx(1.0)


def test_compare_outputs_reports_diffs_and_agreement() -> None:
    ref = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 1.0]])
    cand = ref + np.array([[0.5, 0.0], [0.0, 0.0], [-1.5, 0.0]])
    c = compare_outputs(cand, ref)
    assert c["max_abs_diff"] == pytest.approx(1.5)
    assert c["mean_abs_diff"] == pytest.approx(2.0 / 6)
    assert c["agreement"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shapes differ"):
        compare_outputs(cand[:2], ref)


def test_every_primary_metric_knows_its_direction() -> None:
    for name in task_names():
        task = get_task(name)
        assert METRICS[task.primary].higher_is_better == task.higher_is_better, name
    assert not METRICS["max_abs_diff"].higher_is_better


def _near_tied_embeddings() -> tuple[np.ndarray, np.ndarray]:
    """768-d embeddings whose largest dimensions are close, and a copy with INT8-sized noise:
    cosine ≈ 0.995 while the argmax flips for a large share of rows (as for a real encoder)."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 768))
    candidate = reference + rng.normal(scale=0.1, size=reference.shape)
    return candidate, reference


def test_embeddings_are_verified_by_cosine_not_by_argmax() -> None:

    candidate, reference = _near_tied_embeddings()
    fidelity, classification = get_task("fidelity"), get_task("classification")
    thresholds = VerifyConfig(min_agreement=0.9, min_cosine=0.99)
    result, problem = fidelity.verify(candidate, reference, thresholds)
    assert result["agreement"] < 0.9 < 0.99 < result["cosine"]
    assert problem is None and result["judged_by"] == "cosine"
    # the same outputs from a classifier: judged by top-1 agreement, which fails
    _, problem = classification.verify(candidate, reference, thresholds)
    assert problem is not None and "agreement" in problem
    # a stricter cosine threshold from the recipe fails the embeddings
    stricter = VerifyConfig(min_agreement=0.9, min_cosine=0.999)
    _, problem = fidelity.verify(candidate, reference, stricter)
    assert problem is not None and "cosine" in problem and "0.999" in problem


def test_nonfinite_outputs_fail_verification_even_unjudged() -> None:

    reference = np.ones((4, 3))
    candidate = reference.copy()
    candidate[1, 0] = np.nan
    result, problem = get_task("classification").verify(
        candidate, reference, VerifyConfig(), judge=False
    )
    assert result["judged_by"] is None
    assert problem == "1 non-finite outputs"
