"""Scene cuts by PySceneDetect in `modelpress video`: eight scenes of different handwritten
digits on one background (the colours never change, the content does) give seven cuts where the
scenes change, whatever the sampling, and the smoothing starts again at each; the detector and
its threshold are flags, in the detector's own units, named in the summary."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("scenedetect")

from helpers.cli import run_cli
from helpers.video import make_video, scene_starts
from modelpress.deploy.video import VideoProcessor
from modelpress.errors import ModelpressError

SHAPE = (1, 16, 16)
STARTS = scene_starts(8, 25, 8)[1:]  # frames 25, 50, …, 175


def brightness(x: np.ndarray) -> np.ndarray:
    """A stand-in model: P(positive) = the frame's mean brightness."""
    return x.mean(axis=(1, 2, 3))


@pytest.fixture(scope="module")
def eight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s at 25 fps, 64×64: the digits 0–7, one a second, all in the first palette."""
    path = tmp_path_factory.mktemp("scenes") / "eight-digits.mkv"
    return make_video(path, 8, scenes=8, palette=0, digits=range(8))


def run(path: Path, **kw) -> tuple[list[dict], dict]:
    records = list(VideoProcessor(brightness, SHAPE, **kw).run(path))
    return [r for r in records if r["type"] == "frame"], records[-1]


@pytest.mark.parametrize("sample", ["every:1", "fps:5", "adaptive"])
def test_cuts_between_scenes_of_the_same_colours_are_found_where_the_digit_changes(
    eight: Path, sample: str
) -> None:
    frames, summary = run(eight, sample=sample)

    cuts = [f for f in frames if f["scene_cut"]]
    assert summary["scene_cuts"] == len(cuts) == 7
    for cut, start in zip(cuts, STARTS, strict=True):
        assert abs(cut["index"] - start) <= 1
        assert cut["p_smooth"] == pytest.approx(cut["p"])  # the smoothing starts again
    settings = summary["settings"]["scene_cuts"]
    assert settings["detector"] == "adaptive" and settings["threshold"] == 3.0
    assert settings["class"] == "AdaptiveDetector" and "PySceneDetect" in settings["library"]


def test_adaptive_sampling_goes_dense_at_a_cut_between_two_sampled_frames(eight: Path) -> None:
    frames, _ = run(eight, sample="adaptive:2")  # a frame every 0.5 s: 0, 12 or 13, 25, …

    indices = [f["index"] for f in frames]
    for start in STARTS:  # every frame from the cut on for 0.5 s
        assert set(range(start + 1, start + 12)) <= set(indices)


def test_the_content_detectors_threshold_is_in_its_own_units(eight: Path) -> None:
    _, default = run(eight, scene_detector="content")
    frames, low = run(eight, scene_detector="content", scene_threshold=9)

    # PySceneDetect's default (a mean change of 27 of 255) is for real footage: a digit
    # changing on 64×64 pixels moves the mean by 10 to 20, a digit drifting a pixel by up to 7
    assert default["scene_cuts"] == 0
    assert [f["index"] for f in frames if f["scene_cut"]] == STARTS
    assert low["scene_cuts"] == 7
    assert low["settings"]["scene_cuts"]["detector"] == "content"
    assert low["settings"]["scene_cuts"]["threshold"] == 9


@pytest.mark.parametrize(
    "detector, threshold, fragment",
    [
        ("histogram", None, "--scene-detector 'histogram': use adaptive"),
        ("content", 0.0, "--scene-threshold 0.0: the content detector's threshold"),
        ("content", 300.0, "above 0 and at most 255 (default 27)"),
        ("adaptive", -1.0, "the adaptive detector's threshold is a ratio"),
        ("adaptive", float("nan"), "--scene-threshold nan"),
    ],
)
def test_scene_settings_that_cannot_work_are_refused(
    detector: str, threshold: float | None, fragment: str
) -> None:
    with pytest.raises(ModelpressError) as err:
        VideoProcessor(brightness, SHAPE, scene_detector=detector, scene_threshold=threshold)
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--scene-detector", "histogram"], "--scene-detector 'histogram'"),
        (["--scene-threshold", "300", "--scene-detector", "content"], "at most 255 (default 27)"),
        (["--scene-threshold", "0"], "the adaptive detector's threshold is a ratio"),
    ],
)
def test_the_cli_refuses_scene_flags_in_one_line_before_loading_anything(
    eight: Path, tmp_path: Path, flags: list[str], fragment: str
) -> None:
    out = tmp_path / "r.jsonl"

    result = run_cli(
        "video", str(tmp_path / "never-loaded.pt"), str(eight), "--out", str(out), *flags
    )

    assert result.returncode == 2
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]
    assert not out.exists()


def test_without_scenedetect_the_cli_names_the_extra(
    eight: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "scenedetect", None)  # `import scenedetect` fails

    result = run_cli("video", str(tmp_path / "m.pt"), str(eight), "--out", str(tmp_path / "r"))

    assert result.returncode == 2
    assert (
        "needs the [video] extra: pip install 'modelpress[video]'" in result.stdout + result.stderr
    )


def test_frames_wider_than_the_detectors_are_scaled_down_for_it_and_still_cut(
    tmp_path: Path,
) -> None:
    path = make_video(tmp_path / "wide.mkv", 2, size=200, scenes=2)  # 200×200: 128×128

    frames, summary = run(path)

    assert [f["index"] for f in frames if f["scene_cut"]] == scene_starts(2, 25, 2)[1:]
    assert summary["settings"]["scene_cuts"]["frames"] == "every decoded frame, at most 128 px wide"
