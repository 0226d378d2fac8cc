"""A binary cascade built from two trained models: calibrated, certified, bundled, reloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import assert_one_line_error
from helpers.cli import run_cli as cli
from modelpress.deploy.cascade import BUNDLE_FILE, Cascade, build
from modelpress.errors import ModelpressError
from modelpress.tasks import find_task

DATA = "builtin:digits-manipulated"
SHAPE = "1,1,8,8"


@pytest.fixture
def stages(manipulated_stages: list[str]) -> list[str]:
    """DATA's two stages at SHAPE (trained once a session: conftest)."""
    return manipulated_stages


def test_a_binary_stage_scores_the_log_odds_of_one_and_two_logit_heads() -> None:
    scores = find_task("binary").cascade_scores  # what a binary cascade's stages are read by
    assert scores([np.array([[0.5], [-1.0]])]).tolist() == [0.5, -1.0]
    assert scores([np.array([[0.0, 2.0], [1.0, -1.0]])]).tolist() == [2.0, -2.0]
    with pytest.raises(ModelpressError, match="gives 1 or 2 outputs per item, not 3; use binary"):
        scores([np.zeros((2, 3))])


def test_a_built_cascade_is_certified_bundled_and_routes_as_its_thresholds_say(
    stages: list[str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    cascade, figures = build(
        stages, DATA, bundle, max_leakage=0.1, confidence=0.9, input_shape=SHAPE
    )
    cascade.close()

    doc = json.loads((bundle / BUNDLE_FILE).read_text())
    assert [s["file"] for s in doc["stages"]] == ["stage0-fast.ts", "stage1-precise.ts"]
    assert all((bundle / s["file"]).is_file() for s in doc["stages"])
    first, last = doc["stages"]
    assert first["temperature"] > 0 and last["certificate"] is None
    cert = first["certificate"]
    assert cert["certified"] and cert["upper_bound"] <= 0.1 and cert["low"] <= (cert["high"] or 1)
    c = figures["cascade"]
    assert sum(c["stage_share"]) == pytest.approx(1.0)
    assert c["deferred"] == pytest.approx(c["stage_share"][-1])
    assert c["items"] == 800  # the validation split: 20 % of 4000
    assert 0.5 < c["auc"] <= 1.0 and c["ms_per_item"] > 0

    loaded = Cascade.load(bundle, DATA)
    try:
        x = loaded.dataset.validation.inputs
        routed = loaded.predict(x)
        p0 = loaded.stages[0].probabilities(x)
    finally:
        loaded.close()
    early = routed.stage == 0
    assert set(np.unique(routed.decision)) <= {0, 1}
    # an item the first stage decided has a score outside its band, with that decision
    assert np.all((p0[early] < cert["low"]) | (p0[early] >= (cert["high"] or np.inf)))
    assert np.all(routed.decision[early] == (p0[early] >= cert["low"]).astype(int))
    assert np.all((p0[~early] >= cert["low"]) & (p0[~early] < (cert["high"] or np.inf)))


def test_cascade_eval_writes_the_figures(stages: list[str], tmp_path: Path) -> None:
    bundle, out = tmp_path / "b", tmp_path / "eval.json"
    built = cli(
        "cascade",
        "build",
        "--stage",
        stages[0],
        "--stage",
        stages[1],
        "--data",
        DATA,
        "--input-shape",
        SHAPE,
        "--max-leakage",
        "0.1",
        "--confidence",
        "0.9",
        "--out",
        str(bundle),
    )
    assert built.returncode == 0, built.stderr
    assert "Cascade" in built.stdout and "upper bound" in built.stdout

    result = cli("cascade", "eval", str(bundle), "--data", DATA, "--json", str(out))

    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert {"auc", "f1", "precision", "recall", "leakage", "deferred", "stage_share"} <= set(
        doc["cascade"]
    )
    assert doc["cascade"]["items"] == 4000  # the whole source, every split
    assert [s["name"] for s in doc["stages"]] == ["fast", "precise"]
    assert doc["bound"]["certified"] is True and doc["bound"]["max_leakage"] == 0.1


def test_bad_cascades_are_refused_in_one_line(stages: list[str], tmp_path: Path) -> None:
    one = cli(
        "cascade", "build", "--stage", stages[0], "--data", DATA, "--out", str(tmp_path / "x")
    )
    assert_one_line_error(one, "two stages at least")
    missing = cli(
        "cascade",
        "build",
        "--stage",
        str(tmp_path / "nope.onnx"),
        "--stage",
        stages[1],
        "--data",
        DATA,
        "--out",
        str(tmp_path / "y"),
    )
    assert_one_line_error(missing, "nope.onnx", "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    not_bundle = cli("cascade", "eval", str(empty), "--data", DATA)
    assert_one_line_error(not_bundle, "not a cascade bundle", "cascade build")


def test_a_bundle_of_deployed_stages_scores_new_inputs_without_loading_any_data(
    stages: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers.recipes import tiny_recipe
    from modelpress.core.recipe import build_recipe
    from modelpress.engine import pipeline

    files = []
    for i, stage in enumerate(stages):
        steps = [{"type": "export", "format": "onnx"}]
        recipe = tiny_recipe(stage, data=DATA, input_shape=SHAPE, steps=steps)
        record = pipeline.run(build_recipe(recipe), out=tmp_path / f"s{i}")
        files.append(str(tmp_path / f"s{i}" / record["artifacts"][0]["path"]))
    cascade, _ = build(files, DATA, tmp_path / "b", max_leakage=0.1, confidence=0.9)
    cascade.close()

    with_data = Cascade.load(tmp_path / "b")
    x = with_data.dataset.validation.inputs
    try:
        want = with_data.predict(x)
    finally:
        with_data.close()

    import modelpress.sources.data as data_module

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_data was called")

    monkeypatch.setattr(data_module, "load_data", no_data)
    monkeypatch.setattr("modelpress.engine.context.load_data", no_data)
    lean = Cascade.load(tmp_path / "b", with_data=False)
    try:
        assert lean.dataset is None
        assert [s.shape for s in lean.inputs] == [(1, 1, 8, 8)]
        got = lean.predict(x)
    finally:
        lean.close()
    np.testing.assert_array_equal(got.decision, want.decision)
    np.testing.assert_array_equal(got.stage, want.stage)
    np.testing.assert_allclose(got.p, want.p, rtol=1e-6, atol=1e-7)
