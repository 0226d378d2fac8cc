"""Cascades beyond two binary thresholds: K classes, guarded classes, buckets, a meta-model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import assert_one_line_error
from helpers.cli import run_cli as cli
from helpers.recipes import train_mlp
from modelpress.deploy.cascade import (
    BUNDLE_FILE,
    Cascade,
    CascadeError,
    build,
    entropy,
    parse_buckets,
    sharpness,
)
from modelpress.deploy.meta import features

SHAPE = "1,1,8,8"
BINARY, DIGITS = "builtin:digits-manipulated", "builtin:digits"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("kinds")
    return {
        "bin-fast": train_mlp(out / "bin-fast.pt", BINARY, SHAPE, [8], 2),
        "bin-precise": train_mlp(out / "bin-precise.pt", BINARY, SHAPE, [64], 4),
        "cls-fast": train_mlp(out / "cls-fast.pt", DIGITS, SHAPE, [16], 3),
        "cls-precise": train_mlp(out / "cls-precise.pt", DIGITS, SHAPE, [128], 8),
    }


def _reload(bundle: Path) -> tuple[Cascade, list[np.ndarray], np.ndarray]:
    loaded = Cascade.load(bundle)
    return loaded, loaded.dataset.validation.inputs, loaded.dataset.validation.labels


def test_a_classification_cascade_exits_on_top1_confidence_and_bounds_the_exits_errors(
    models: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "b"
    cascade, figures = build(
        [models["cls-fast"], models["cls-precise"]],
        DIGITS,
        bundle,
        max_leakage=0.2,
        confidence=0.9,
        input_shape=SHAPE,
        task="classification",
    )
    cascade.close()
    doc = json.loads((bundle / BUNDLE_FILE).read_text())
    cert = doc["stages"][0]["certificate"]
    assert doc["task"] == "classification" and len(doc["classes"]) == 10
    assert cert["kind"] == "confidence" and cert["low"] is None and 0 < cert["high"] <= 1
    assert cert["certified"] and cert["upper_bound"] <= 0.2
    assert doc["bound"]["measure"] == "errors among early exits"

    loaded, x, labels = _reload(bundle)
    try:
        routed = loaded.predict(x)
        p0 = loaded.stages[0].probabilities(x)
        p1 = loaded.stages[1].probabilities(x)
    finally:
        loaded.close()
    early = routed.stage == 0
    assert routed.probs is not None and routed.probs.shape == (len(labels), 10)
    assert early.any() and (~early).any()
    assert np.all(p0[early].max(1) >= cert["high"]) and np.all(p0[~early].max(1) < cert["high"])
    assert np.array_equal(routed.decision[early], p0[early].argmax(1))
    assert np.array_equal(routed.decision[~early], p1[~early].argmax(1))
    assert np.allclose(routed.p, routed.probs[np.arange(len(labels)), routed.decision])
    c = figures["cascade"]
    errors = int((routed.decision[early] != labels[early]).sum())
    assert (c["leaked"], c["positives"]) == (errors, int(early.sum()))
    assert c["accuracy"] == pytest.approx(float((routed.decision == labels).mean()))
    for timed in (c, *(s["alone"] for s in figures["stages"])):  # batch 1, one item at a time
        assert 0 < timed["single_ms"]["p50"] <= timed["single_ms"]["p90"]


def test_guarded_classes_bound_their_items_exiting_as_another_class(
    models: dict[str, str], tmp_path: Path
) -> None:
    cascade, figures = build(
        [models["cls-fast"], models["cls-precise"]],
        DIGITS,
        tmp_path / "b",
        max_leakage=0.2,
        confidence=0.9,
        input_shape=SHAPE,
        task="classification",
        positive=["3", "8"],
    )
    try:
        routed = cascade.predict(cascade.dataset.validation.inputs)
    finally:
        cascade.close()
    labels = cascade.dataset.validation.labels
    assert cascade.meta["positive_classes"] == [3, 8]
    cert = cascade.stages[0].certificate
    assert cert["measure"].startswith("positive-class items exiting early as another class")
    guarded = np.isin(labels, [3, 8])
    missed = guarded & (routed.stage == 0) & ~np.isin(routed.decision, [3, 8])
    c = figures["cascade"]
    assert (c["leaked"], c["positives"]) == (int(missed.sum()), int(guarded.sum()))


def test_buckets_give_each_bin_its_own_certificate_and_route_by_it(
    models: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "b"
    cascade, _ = build(
        [models["bin-fast"], models["bin-precise"]],
        BINARY,
        bundle,
        max_leakage=0.1,
        confidence=0.9,
        input_shape=SHAPE,
        buckets="quality:3",
    )
    cascade.close()
    spec = json.loads((bundle / BUNDLE_FILE).read_text())["stages"][0]["buckets"]
    assert spec["by"] == "quality" and len(spec["edges"]) == 2
    assert len(spec["certificates"]) == 3
    assert spec["confidence_each"] == pytest.approx(1 - 0.1 / 3)
    assert all(c["certified"] and c["upper_bound"] <= 0.1 for c in spec["certificates"])

    loaded, x, _ = _reload(bundle)
    try:
        routed = loaded.predict(x)
        p0 = loaded.stages[0].probabilities(x)
    finally:
        loaded.close()
    ids = np.digitize(sharpness(x[0]), spec["edges"])
    for b, cert in enumerate(spec["certificates"]):
        mine = ids == b
        exits = (p0[mine] < cert["low"]) | (p0[mine] >= (cert["high"] or np.inf))
        assert np.array_equal(routed.stage[mine] == 0, exits)


def test_a_meta_model_decides_what_reaches_the_end_and_reloads_the_same(
    models: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "b"
    cascade, figures = build(
        [models["bin-fast"], models["bin-precise"]],
        BINARY,
        bundle,
        max_leakage=0.1,
        confidence=0.9,
        input_shape=SHAPE,
        meta="logistic",
    )
    try:
        x = cascade.dataset.validation.inputs
        built = cascade.predict(x)
        p0, p1 = (s.probabilities(x) for s in cascade.stages)
    finally:
        cascade.close()
    doc = json.loads((bundle / BUNDLE_FILE).read_text())["meta_model"]
    assert doc["kind"] == "logistic" and len(doc["coef"][0]) == len(doc["features"]) == 3
    oof = doc["out_of_fold"]
    assert 0.5 < oof["auc"] <= 1 and oof["deferred_items"] > 0 and doc["folds"] == 5
    assert 0 < doc["threshold"] < 1
    # the meta-model's score is a logistic function of the stages' log-odds and what ran
    reach = built.stage == 1
    ran = np.stack([np.ones(len(p0), bool), reach], axis=1)
    z = features([p0, np.where(reach, p1, 0.0)], ran, True) @ np.asarray(doc["coef"][0])
    expected = 1 / (1 + np.exp(-(z + doc["intercept"][0])))
    assert np.allclose(built.p, expected, atol=1e-6)
    assert np.array_equal(built.decision[reach], (expected[reach] >= doc["threshold"]).astype(int))
    low = json.loads((bundle / BUNDLE_FILE).read_text())["stages"][0]["certificate"]["low"]
    assert np.array_equal(built.decision[~reach], (p0[~reach] >= low).astype(int))  # as exited
    assert figures["cascade"]["meta_changed"] == built.meta_changed

    loaded, lx, _ = _reload(bundle)
    try:
        again = loaded.predict(lx)
    finally:
        loaded.close()
    assert np.allclose(again.p, built.p) and np.array_equal(again.decision, built.decision)


def test_a_lightgbm_meta_model_is_kept_as_its_text_file(
    models: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("lightgbm")
    bundle = tmp_path / "b"
    cascade, _ = build(
        [models["cls-fast"], models["cls-precise"]],
        DIGITS,
        bundle,
        max_leakage=0.2,
        confidence=0.9,
        input_shape=SHAPE,
        task="classification",
        meta="lightgbm",
    )
    try:
        built = cascade.predict(cascade.dataset.validation.inputs)
    finally:
        cascade.close()
    doc = json.loads((bundle / BUNDLE_FILE).read_text())["meta_model"]
    assert doc["file"] == "meta-lightgbm.txt" and (bundle / doc["file"]).read_text().startswith(
        "tree"
    )
    assert "coef" not in doc
    loaded, x, _ = _reload(bundle)
    try:
        again = loaded.predict(x)
    finally:
        loaded.close()
    assert again.probs is not None and np.allclose(again.probs, built.probs)
    assert np.allclose(again.probs.sum(1), 1.0)


def test_bucket_scores() -> None:
    assert entropy(np.array([0.5, 0.0]))[0] == pytest.approx(np.log(2))
    assert entropy(np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(0.0)
    flat, edge = np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 5, 5))
    edge[..., 2:] = 1.0
    assert sharpness(flat)[0] == 0.0 and sharpness(edge)[0] > 0.1
    assert parse_buckets("entropy:3") == ("entropy", 3) and parse_buckets(None) is None
    for bad in ("entropy:1", "size:3", "quality:x", "quality:11"):
        with pytest.raises(CascadeError, match="KIND:COUNT"):
            parse_buckets(bad)
    with pytest.raises(CascadeError, match="--buckets entropy"):
        sharpness(np.zeros((4, 16)))


def test_bad_cascades_of_these_kinds_are_refused_in_one_line(
    models: dict[str, str], tmp_path: Path
) -> None:
    def build_cli(*args: str):
        out = str(tmp_path / "x")
        return cli(
            "cascade", "build", "--input-shape", SHAPE, "--max-leakage", "0.3", "--out", out, *args
        )

    two_vs_ten = build_cli(
        "--stage",
        models["cls-fast"],
        "--stage",
        models["bin-precise"],
        "--data",
        DIGITS,
        "--task",
        "classification",
    )
    assert_one_line_error(two_vs_ten, "bin-precise.pt", "2 values per sample", "10 classes")
    ten_classes = build_cli(
        "--stage", models["cls-fast"], "--stage", models["cls-precise"], "--data", DIGITS
    )
    assert_one_line_error(ten_classes, "10 classes", "classification")
    unknown = build_cli(
        "--stage",
        models["bin-fast"],
        "--stage",
        models["bin-precise"],
        "--data",
        BINARY,
        "--positive",
        "fake",
    )
    assert_one_line_error(unknown, "--positive fake", "real, manipulated")
    meta = build_cli(
        "--stage",
        models["bin-fast"],
        "--stage",
        models["bin-precise"],
        "--data",
        BINARY,
        "--meta",
        "forest",
    )
    assert_one_line_error(meta, "--meta forest", "logistic, lightgbm")


def test_cascade_build_cli_with_a_meta_model_and_buckets_writes_bundle_and_report(
    models: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "b"
    result = cli(
        "cascade",
        "build",
        "--stage",
        models["cls-fast"],
        "--stage",
        models["cls-precise"],
        "--data",
        DIGITS,
        "--input-shape",
        SHAPE,
        "--task",
        "classification",
        "--max-leakage",
        "0.2",
        "--confidence",
        "0.9",
        "--meta",
        "logistic",
        "--buckets",
        "entropy:2",
        "--out",
        str(bundle),
    )
    assert result.returncode == 0, result.stderr
    assert "meta-model: logistic over 21 features" in result.stdout
    assert "2 bins of entropy, a certificate each" in result.stdout
    assert "acc" in result.stdout
    assert (bundle / "report.html").is_file() and (bundle / BUNDLE_FILE).is_file()
