"""deploy/video.py's frame conversion: one swscale context kept across a video's frames gives
what a fresh conversion of each frame gives, frame sizes changing mid-stream included."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av")

from modelpress.deploy.video import analysis_rgb  # noqa: E402


def test_one_reformatter_over_frames_of_changing_sizes_converts_each_as_a_fresh_one() -> None:
    from av.video.reformatter import VideoReformatter

    rng = np.random.default_rng(0)
    shared = VideoReformatter()
    for h, w in ((64, 64), (48, 80), (600, 1200), (64, 64)):
        frame = av.VideoFrame.from_ndarray(
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8), format="rgb24"
        ).reformat(format="yuv420p")  # as decoded: YUV 4:2:0

        rgb = analysis_rgb(frame, shared)

        expected = frame.to_ndarray(
            format="rgb24", **({} if max(h, w) <= 512 else {"width": 512, "height": 256})
        )
        assert rgb.shape == expected.shape
        assert np.array_equal(rgb, expected)
