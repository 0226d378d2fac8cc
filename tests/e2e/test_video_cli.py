"""`modelpress video` as a user runs it: a binary model (or a cascade bundle) over generated
clips, JSON lines written, a table per video, one-line errors for what cannot be read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.cli import assert_one_line_error
from helpers.cli import run_cli as cli

pytest.importorskip("av")

from helpers.video import make_audio_only, make_empty, make_video, truncate

DATA = "builtin:digits-manipulated"
SHAPE = "1,1,16,16"


def _train(path: Path, width: float, epochs: int) -> Path:
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    recipe = build_recipe(
        {
            "model": "zoo:dscnn",
            "model_kwargs": {"width_mult": width},
            "data": DATA,
            "input_shape": SHAPE,
        }
    )
    train_and_save(recipe, TrainConfig(epochs=epochs, lr=3e-3, seed=0), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small binary dscnn trained 2 epochs on builtin:digits-manipulated at 16×16."""
    return _train(tmp_path_factory.mktemp("video-model") / "fast.pt", 0.25, 2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    whole = make_video(root / "clip[1].mkv", 4, scenes=2)  # brackets: not rich markup
    return {"whole": whole, "cut": truncate(whole, root / "cut.mkv", 0.5)}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_model_over_two_videos_writes_their_records_and_says_where_one_stopped(
    model: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"

    result = cli(
        "video",
        str(model),
        str(clips["whole"]),
        str(clips["cut"]),
        "--data",
        DATA,
        "--sample",
        "fps:10",
        "--workers",
        "2",
        "--out",
        str(out),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    records = _records(out)
    starts = [i for i, r in enumerate(records) if r["type"] == "video"]
    assert [records[i]["path"] for i in starts] == [str(clips["whole"]), str(clips["cut"])]
    whole, cut = records[starts[0] + 1 : starts[1]], records[starts[1] + 1 :]
    for part in (whole, cut):
        frames = [r for r in part if r["type"] == "frame"]
        summary = part[-1]
        assert summary["type"] == "summary" and summary["frames_processed"] == len(frames)
        assert all(0 <= f["p"] <= 1 and 0 <= f["p_smooth"] <= 1 for f in frames)
        assert summary["decision"] in ("positive", "negative")
    assert whole[-1]["frames_decoded"] == 100 and whole[-1]["frames_sampled"] == 40
    assert whole[-1]["stopped_at"] is None
    assert whole[-1]["settings"]["threads"] == (os.cpu_count() or 1)  # no --threads: every core
    assert cut[-1]["frames_decoded"] < 100 and cut[-1]["stopped_at"]["frame"] >= 0
    assert f"video {clips['whole']}" in result.stdout  # the path as written, brackets and all
    assert "decoding stopped early" in result.stdout and "truncated" in result.stdout
    assert not out.with_name(out.name + ".tmp").exists()


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.mkv", "no such video file"),
        (lambda d: make_audio_only(d / "sound.wav"), "holds no video stream"),
        (lambda d: make_empty(d / "empty.avi"), "no frame decodes"),
    ],
)
def test_a_video_without_frames_is_a_one_line_error_and_nothing_is_written(
    make, fragment: str, tmp_path: Path
) -> None:
    video, out = make(tmp_path), tmp_path / "results.jsonl"

    # the videos are checked before the model is loaded: no model needed to see the error
    result = cli("video", str(tmp_path / "never-loaded.pt"), str(video), "--out", str(out))

    assert_one_line_error(result, fragment, str(video))
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()


def test_a_file_where_nothing_decodes_is_refused_before_any_work(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    garbage = make_video(tmp_path / "garbage.mkv", 2, codec="mpeg4", corrupt_packets=(0, 999))
    out = tmp_path / "results.jsonl"

    result = cli(
        "video",
        str(tmp_path / "never-loaded.pt"),
        str(clips["whole"]),
        str(garbage),
        "--out",
        str(out),
    )

    assert_one_line_error(result, str(garbage), "no frame decodes", "failed to decode")
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()


def test_a_sampling_it_cannot_read_is_a_one_line_error(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    model, out = tmp_path / "never-loaded.pt", tmp_path / "r.jsonl"

    result = cli("video", str(model), str(clips["whole"]), "--sample", "often", "--out", str(out))

    assert_one_line_error(result, "--sample 'often'", "every:N")
    assert not out.exists()


@pytest.mark.slow
def test_a_cascade_bundle_scores_a_video(
    model: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    from modelpress.deploy.cascade import build

    precise = _train(tmp_path / "precise.pt", 0.5, 2)
    cascade, _ = build(
        [str(model), str(precise)],
        DATA,
        tmp_path / "bundle",
        max_leakage=0.2,
        confidence=0.9,
        input_shape=SHAPE,
    )
    cascade.close()
    out = tmp_path / "results.jsonl"

    bundle = str(tmp_path / "bundle")
    result = cli("video", bundle, str(clips["whole"]), "--out", str(out), "--threads", "1")

    assert result.returncode == 0, result.stdout + result.stderr
    records = _records(out)
    assert records[0] == {"type": "video", "path": str(clips["whole"])}
    assert records[-1]["type"] == "summary" and records[-1]["frames_processed"] == 100
    assert records[-1]["settings"]["threads"] == 1  # the stages' runtimes ran at --threads
    assert "decision:" in result.stdout


def _onnx(checkpoint: str, data: str, shape: str, out: Path) -> Path:
    from helpers.recipes import tiny_recipe
    from modelpress.core.recipe import build_recipe
    from modelpress.engine import pipeline

    steps = [{"type": "export", "format": "onnx"}]
    recipe = tiny_recipe(checkpoint, data=data, input_shape=shape, steps=steps)
    record = pipeline.run(build_recipe(recipe), out=out)
    return out / record["artifacts"][0]["path"]


def test_an_onnx_model_scores_frames_without_loading_any_data(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from modelpress.deploy.video import video_scorer

    onnx = _onnx(str(model), DATA, SHAPE, tmp_path / "run")

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_data was called")

    monkeypatch.setattr("modelpress.engine.context.load_data", no_data)
    score, chw, close, threads = video_scorer(str(onnx), None, None, 1, False, default_data=DATA)
    try:
        p = score(np.random.default_rng(0).random((3, *chw), dtype=np.float32))
    finally:
        close()
    assert chw == (1, 16, 16) and p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
    assert threads == 1


def test_a_ten_class_onnx_model_is_refused_before_any_frame(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    onnx = _onnx("zoo:dscnn", "builtin:digits", SHAPE, tmp_path / "run")
    result = cli("video", str(onnx), str(clips["whole"]), "--out", str(tmp_path / "r.jsonl"))
    assert_one_line_error(result, str(onnx), "gives 10 outputs per item", "takes a binary model")
    assert not (tmp_path / "r.jsonl").exists()
