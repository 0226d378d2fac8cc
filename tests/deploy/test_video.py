"""VideoProcessor on clips generated on the fly: counts, sampling, scene cuts, quality filter,
corrupt and truncated files, stream drops, frame order with workers, flat memory."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from helpers.video import (
    damage,
    make_audio_only,
    make_empty,
    make_video,
    scene_starts,
    truncate,
)
from modelpress.deploy.video import (
    VideoError,
    VideoProcessor,
    analysis_rgb,
    model_input,
    sharpness,
)

SHAPE = (1, 16, 16)


def brightness(x: np.ndarray) -> np.ndarray:
    """A stand-in model: P(positive) = the frame's mean brightness."""
    return x.mean(axis=(1, 2, 3))


def run(path: Path, score=brightness, **kw) -> tuple[list[dict], list[dict], dict]:
    records = list(VideoProcessor(score, SHAPE, **kw).run(path))
    assert records[-1]["type"] == "summary"
    frames = [r for r in records if r["type"] == "frame"]
    windows = [r for r in records if r["type"] == "window"]
    return frames, windows, records[-1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 25 fps, 64×64, two scenes (the second from frame 50)."""
    return make_video(tmp_path_factory.mktemp("video") / "clip.mkv", 4, scenes=2)


def test_every_frame_is_decoded_scored_and_summarised(clip: Path) -> None:
    records = list(VideoProcessor(brightness, SHAPE, window=8).run(clip))
    json.dumps(records)  # every record is JSON as it is

    frames = [r for r in records if r["type"] == "frame"]
    windows = [r for r in records if r["type"] == "window"]
    summary = records[-1]
    assert summary["frames_decoded"] == 100 and summary["frames_sampled"] == 100
    assert [f["index"] for f in frames] == list(range(100))
    assert summary["frames_processed"] == 100 and summary["frames_corrupt"] == 0
    assert summary["stopped_at"] is None and summary["frames_dropped"] == 0
    assert [f["time"] for f in frames[:3]] == [0.0, 0.04, 0.08]
    assert len(windows) == summary["windows"] == 12  # 100 // 8 complete windows
    assert windows[0]["first_frame"] == 0 and windows[0]["last_frame"] == 7
    for w in windows:
        assert 0 <= w["consistency"] <= 1
        assert w["decision"] == ("positive" if w["p_smooth"] >= 0.5 else "negative")
    share = sum(w["decision"] == "positive" for w in windows) / len(windows)
    assert summary["decision"] == ("positive" if share >= 0.5 else "negative")
    assert "at least half" in summary["rule"]
    assert summary["fps"] > 0 and summary["latency_ms"]["p95"] >= summary["latency_ms"]["p50"]
    assert summary["settings"]["scene_cuts"]["detector"] == "adaptive"
    # the stand-in model sees each frame: its score is the grey frame's mean brightness
    assert all(0 < f["p"] < 1 for f in frames)


def test_sampling_by_count_and_by_timestamp(clip: Path) -> None:
    every2, _, s2 = run(clip, sample="every:2")
    fps5, _, s5 = run(clip, sample="fps:5")
    fps10, _, _ = run(clip, sample="fps:10")

    assert s2["frames_decoded"] == s5["frames_decoded"] == 100
    assert s2["frames_sampled"] == 50 and [f["index"] for f in every2] == list(range(0, 100, 2))
    assert s5["frames_sampled"] == 20
    assert Counter(int(f["time"]) for f in fps5) == {0: 5, 1: 5, 2: 5, 3: 5}  # 5 a second
    assert len(fps10) == 40  # 10 a second of a 25 fps clip, not every third frame


def test_adaptive_sampling_takes_every_frame_just_after_a_cut(clip: Path) -> None:
    frames, _, summary = run(clip, sample="adaptive")

    cut = next(f for f in frames if f["scene_cut"])
    after = [f["index"] for f in frames if cut["time"] <= f["time"] < cut["time"] + 0.5]
    assert after == list(range(cut["index"], cut["index"] + len(after))) and len(after) >= 12
    before = [f["index"] for f in frames if f["time"] < cut["time"]]
    assert before == list(range(0, cut["index"], 5))  # the base rate, 5 a second
    assert summary["frames_sampled"] > 20


@pytest.mark.parametrize("sample, step", [("every:1", 1), ("fps:5", 5)])
def test_scene_cuts_are_found_where_the_scenes_change(
    tmp_path: Path, sample: str, step: int
) -> None:
    path = make_video(tmp_path / "three.mkv", 4, scenes=3, seed=1)
    starts = scene_starts(4, 25, 3)[1:]  # frames 33 and 67

    frames, _, summary = run(path, sample=sample)

    cuts = [f for f in frames if f["scene_cut"]]
    assert summary["scene_cuts"] == len(cuts) == 2
    for cut, start in zip(cuts, starts, strict=True):
        assert abs(cut["index"] - start) <= step  # within one sampled frame
        assert cut["p_smooth"] == pytest.approx(cut["p"])  # the smoothing starts again


def test_quality_filter_skips_black_frames_but_keeps_the_sharpest_of_a_black_window(
    tmp_path: Path,
) -> None:
    path = make_video(tmp_path / "black.mkv", 4, scenes=1, black=(1.0, 2.0))  # frames 25–49

    frames, _, summary = run(path, window=8)

    scored_black = [f["index"] for f in frames if 25 <= f["index"] < 50]
    # windows 32–39 and 40–47 are black throughout: their sharpest 8 // 4 = 2 are kept; the
    # black frames of windows that have a good frame are skipped
    assert Counter(i // 8 for i in scored_black) == {4: 2, 5: 2}
    assert summary["frames_skipped_quality"] == 25 - 4
    assert summary["frames_processed"] == 100 - 21
    assert summary["frames_sampled"] == (
        summary["frames_processed"] + summary["frames_skipped_quality"] + summary["frames_dropped"]
    )


def test_a_truncated_copy_gives_a_partial_result_that_says_where_it_stopped(
    clip: Path, tmp_path: Path
) -> None:
    cut = truncate(clip, tmp_path / "cut.mkv", 0.5)

    frames, _, summary = run(cut)

    assert 0 < summary["frames_decoded"] < 100
    stopped = summary["stopped_at"]
    assert stopped["frame"] == frames[-1]["index"] == summary["frames_decoded"] - 1
    assert stopped["time"] == pytest.approx(frames[-1]["time"])
    assert "truncated" in stopped["reason"]


def test_corrupt_packets_are_counted_and_too_many_in_a_row_stop_decoding(tmp_path: Path) -> None:
    path = make_video(tmp_path / "bad.mkv", 4, codec="mpeg4", corrupt_packets=(30, 40))

    _, _, summary = run(path)
    _, _, stopped = run(path, max_consecutive_errors=5)

    assert summary["frames_corrupt"] == 10 and summary["frames_decoded"] == 90
    assert summary["stopped_at"] is None  # 10 in a row is under the default limit
    assert stopped["frames_decoded"] == 30 and stopped["frames_corrupt"] == 5
    assert stopped["stopped_at"]["frame"] == 29
    assert "5 packets in a row failed to decode" in stopped["stopped_at"]["reason"]


def test_inputs_without_a_decodable_frame_are_one_line_errors(tmp_path: Path) -> None:
    cases = {
        "no such video file": tmp_path / "missing.mkv",
        "holds no video stream (audio only)": make_audio_only(tmp_path / "sound.wav"),
        "no frame decodes (the video stream holds none": make_empty(tmp_path / "empty.avi"),
        "no frame decodes (25 packet(s) failed to decode": make_video(
            tmp_path / "garbage.mkv", 2, codec="mpeg4", corrupt_packets=(0, 10**6)
        ),
        "not a video PyAV can read": tmp_path / "zero.mkv",
    }
    (tmp_path / "zero.mkv").write_bytes(b"")
    for fragment, path in cases.items():
        with pytest.raises(VideoError) as err:
            run(path)
        message = str(err.value)
        assert fragment in message and str(path) in message and "\n" not in message


def test_stream_mode_drops_the_oldest_frames_when_scoring_falls_behind(
    tmp_path: Path,
) -> None:
    path = make_video(tmp_path / "live.mkv", 2)

    def slow(x: np.ndarray) -> np.ndarray:
        time.sleep(0.02)
        return brightness(x)

    live, _, dropped = run(path, slow, stream=True, queue_size=4, batch=2)
    whole, _, waited = run(path, slow, stream=False, queue_size=4, batch=2)

    assert dropped["frames_dropped"] > 0
    assert (
        dropped["frames_sampled"]
        == 50
        == (
            dropped["frames_processed"]
            + dropped["frames_dropped"]
            + dropped["frames_skipped_quality"]
        )
    )
    indices = [f["index"] for f in live]
    assert indices == sorted(indices) and len(indices) == dropped["frames_processed"]
    assert waited["frames_dropped"] == 0 and len(whole) == 50  # a file waits instead


def test_workers_score_batches_in_parallel_and_records_keep_frame_order(clip: Path) -> None:
    rng = np.random.default_rng(0)
    delays = iter(rng.uniform(0, 0.01, 1000).tolist())
    lock = threading.Lock()

    def jittery(x: np.ndarray) -> np.ndarray:
        with lock:
            delay = next(delays)
        time.sleep(delay)
        return brightness(x)

    one, _, _ = run(clip)
    many, _, summary = run(clip, jittery, workers=3, batch=4)

    assert [f["index"] for f in many] == list(range(100))
    assert [f["p"] for f in many] == pytest.approx([f["p"] for f in one])
    assert summary["settings"]["workers"] == 3


def test_without_a_complete_window_the_last_smoothed_frame_decides(clip: Path) -> None:
    frames, windows, summary = run(clip, window=500)

    assert windows == [] and summary["windows"] == 0
    assert "no complete window" in summary["rule"]
    expected = "positive" if frames[-1]["p_smooth"] >= 0.5 else "negative"
    assert summary["decision"] == expected


def test_leaving_early_stops_the_decoder(clip: Path) -> None:
    records = VideoProcessor(brightness, SHAPE, queue_size=2).run(clip)
    first = next(records)
    records.close()

    assert first["type"] == "frame"
    assert not [t for t in threading.enumerate() if t.name.startswith("modelpress-video")]


def test_memory_stays_flat_on_a_five_times_longer_clip(tmp_path: Path) -> None:
    short = make_video(tmp_path / "short.mkv", 2, size=32)
    long = make_video(tmp_path / "long.mkv", 10, size=32)

    def peak(path: Path) -> tuple[int, int]:
        """(the lower of two runs' peak of Python allocations, records): a busy machine can
        let the decoder run ahead of the scorers once; a leak shows in both runs."""
        peaks = []
        for _ in range(2):
            tracemalloc.start()
            n = sum(1 for _ in VideoProcessor(brightness, SHAPE, queue_size=16).run(path))
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        return min(peaks), n

    peak(long)  # warm up: imports and the interpreter's free lists
    short_peak, short_records = peak(short)
    long_peak, long_records = peak(long)

    assert long_records > 4 * short_records  # five times the frames went through
    assert long_peak < 1.5 * short_peak


def test_frames_of_any_size_become_the_model_input() -> None:
    import av

    big = av.VideoFrame.from_ndarray(np.zeros((1000, 2000, 3), np.uint8), format="rgb24")
    assert analysis_rgb(big).shape == (256, 512, 3)  # scaled down while converting
    for h, w in ((1, 1), (7, 3), (300, 500)):
        rgb = np.full((h, w, 3), 255, np.uint8)
        x = model_input(rgb, (1, 16, 16))
        assert x.shape == (1, 16, 16) and x.dtype == np.float32
        assert x.max() == pytest.approx(1.0)
        assert model_input(rgb, (3, 8, 4)).shape == (3, 8, 4)
    assert sharpness(np.zeros((1, 1), np.float32)) == 0.0


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(VideoError, match="--sample 'fps:0'"):
        VideoProcessor(brightness, SHAPE, sample="fps:0")
    with pytest.raises(VideoError, match="1 or 3 channels"):
        VideoProcessor(brightness, (2, 16, 16))
    with pytest.raises(VideoError, match="unknown key min_contrast"):
        VideoProcessor(brightness, SHAPE, quality={"min_contrast": 0.1})


# ---------------------------------------------------------------- damage mid-file vs a cut


def test_damage_in_the_middle_of_an_mp4_is_corrupt_frames_not_truncation(tmp_path: Path) -> None:
    """Regression: packets that failed mid-file were counted, yet the summary said the file
    ended early (truncated?) because fewer frames decoded than it declares."""
    clip = make_video(tmp_path / "clip.mp4", 4, faststart=True)
    bad = damage(clip, tmp_path / "bad.mp4", 0.5, 0.1)

    _, _, summary = run(bad)

    assert 0 < summary["frames_corrupt"] < 100
    assert summary["frames_decoded"] + summary["frames_corrupt"] == 100
    assert summary["stopped_at"] is None  # it was read to its end


def test_damage_the_demuxer_resyncs_past_counts_the_frames_it_skipped(tmp_path: Path) -> None:
    """Regression: Matroska skipped the damaged clusters and read on at a later one: 73 frames
    vanished with frames_corrupt 0 and no stopped_at."""
    clip = make_video(tmp_path / "clip.mkv", 4, codec="mpeg4")  # a cluster every 12 frames
    bad = damage(clip, tmp_path / "bad.mkv", 0.4, 0.3)

    _, _, summary = run(bad)

    assert summary["frames_decoded"] < 60
    assert summary["frames_decoded"] + summary["frames_corrupt"] == 100
    assert summary["stopped_at"] is None


def test_damage_the_demuxer_cannot_read_past_is_corrupt_not_truncated(tmp_path: Path) -> None:
    """One Matroska cluster holds the whole clip: after the damage nothing is read, though
    the file goes on. That is damage (the frames after it counted corrupt), not a cut."""
    clip = make_video(tmp_path / "clip.mkv", 4, codec="libx264")
    bad = damage(clip, tmp_path / "bad.mkv", 0.4, 0.05)

    _, _, summary = run(bad)

    stopped = summary["stopped_at"]
    assert stopped["kind"] == "corrupt" and "truncated" not in stopped["reason"]
    assert "the file is not cut short" in stopped["reason"]
    assert summary["frames_decoded"] < 60
    assert summary["frames_decoded"] + summary["frames_corrupt"] == 100


def test_a_faststart_mp4_cut_short_decodes_to_the_cut_and_says_truncated(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", 4, faststart=True)
    cut = truncate(clip, tmp_path / "cut.mp4", 0.8)

    frames, _, summary = run(cut)

    assert 40 < summary["frames_decoded"] < 100 and summary["frames_corrupt"] == 0
    assert summary["stopped_at"]["kind"] == "truncated"
    assert summary["stopped_at"]["frame"] == frames[-1]["index"]
    assert "truncated" in summary["stopped_at"]["reason"]
