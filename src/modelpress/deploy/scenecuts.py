"""Scene cuts in a stream of decoded frames, found by PySceneDetect's detectors (``scenedetect``,
the ``[video]`` extra), fed one frame at a time from our own decode loop: PySceneDetect never
opens the video, so corrupt packets stay ours to count.

Every decoded frame goes through the detector (sampled or not), as a BGR image at most
``DETECT_WIDTH`` wide (PySceneDetect's own ``SceneManager`` scales to 256: at 128 the pans
below give the same cuts, 256 and 512 px wide, for about a third of the detector's time).
A detector may report a cut a few frames after it (``lag``: the adaptive detector compares a
frame with ``ADAPTIVE_WINDOW`` frames on each side), so the caller holds its frames that long.

- ``content`` (``ContentDetector``): a cut where the mean change of saturation and brightness
  between two frames (0–255) reaches the threshold (PySceneDetect's default 27). Fast camera
  motion over a detailed scene changes that much too.
- ``adaptive`` (``AdaptiveDetector``, the default): a cut where that change is ``threshold``
  times (default 3) the mean of the ``ADAPTIVE_WINDOW`` frames' on each side and at least
  ``ADAPTIVE_MIN_CONTENT``. Motion changes neighbouring frames alike and does not stand out;
  a cut does.

Hue is left out of the change (PySceneDetect weighs it 1): on grey, white and dark pixels it
is undefined and jumps with the noise. Measured through ``VideoProcessor`` on generated clips
(30 clips of eight scenes at 64×64: the digits 0–7 on one of 6 palettes, 5 seeds; 3 clips of
100 s with 20 scenes of changing palettes; pans over scikit-learn's two sample photos at 1–24 px
a frame, 256×144, one cut between them): the adaptive detector as set here finds all 210
eight-scene cuts, all 57 palette cuts and all 5 pan cuts, and no cut where there is none; the
content detector at 27 finds none of the 210, 49 of the 57, and 4 of the 5 with 10 false cuts
in the pans (at 9: 186 of 210, and 35 false cuts in the pans).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from modelpress.errors import ModelpressError

DETECTORS = ("adaptive", "content")
DEFAULT_THRESHOLD = {"adaptive": 3.0, "content": 27.0}  # PySceneDetect's own defaults
ADAPTIVE_WINDOW = 4  # frames on each side a frame's change is compared with (library: 2)
ADAPTIVE_MIN_CONTENT = 5.0  # the least change (0–255) that can be a cut (library: 15)
WEIGHTS = (0.0, 1.0, 1.0, 0.0)  # hue, saturation, brightness, edges (library: 1, 1, 1, 0)
MIN_SCENE_S = 0.6  # no cut closer than this to the last (library: 15 frames, 0.6 s at 25 fps)
DETECT_WIDTH = 128


class SceneCutError(ModelpressError):
    """Scene-cut settings that cannot work."""


@dataclass(frozen=True)
class SceneCuts:
    """Which detector finds scene cuts, and its threshold in its own units."""

    detector: str = "adaptive"
    threshold: float = DEFAULT_THRESHOLD["adaptive"]

    @classmethod
    def parse(cls, detector: str = "adaptive", threshold: float | None = None) -> SceneCuts:
        """Validated settings; ``threshold`` None: the detector's default."""
        name = detector.strip().lower()
        if name not in DETECTORS:
            raise SceneCutError(
                f"--scene-detector '{detector}': use adaptive (a change that stands out from "
                "its neighbours') or content (a change over a fixed threshold)"
            )
        value = DEFAULT_THRESHOLD[name] if threshold is None else float(threshold)
        if name == "content" and not 0 < value <= 255:
            raise SceneCutError(
                f"--scene-threshold {threshold}: the content detector's threshold is a mean "
                f"change of saturation and brightness, above 0 and at most 255 (default "
                f"{DEFAULT_THRESHOLD['content']:g})"
            )
        if name == "adaptive" and not 0 < value <= 255:
            raise SceneCutError(
                f"--scene-threshold {threshold}: the adaptive detector's threshold is a ratio "
                "of a frame's change to its neighbours', above 0 and at most 255 (default "
                f"{DEFAULT_THRESHOLD['adaptive']:g})"
            )
        return cls(name, value)

    def settings(self) -> dict[str, Any]:
        """What the summary record says about the scene cuts."""
        import scenedetect

        common = {
            "library": f"PySceneDetect {scenedetect.__version__}",
            "threshold": self.threshold,
            "min_scene_s": MIN_SCENE_S,
            "weights": dict(
                zip(("hue", "saturation", "brightness", "edges"), WEIGHTS, strict=True)
            ),
            "frames": f"every decoded frame, at most {DETECT_WIDTH} px wide",
        }
        if self.detector == "content":
            return {"detector": "content", "class": "ContentDetector", **common}
        return {
            "detector": "adaptive",
            "class": "AdaptiveDetector",
            **common,
            "window_width": ADAPTIVE_WINDOW,
            "min_content_val": ADAPTIVE_MIN_CONTENT,
        }

    def cutter(self, rate: float) -> SceneCutter:
        """A detector for one video of ``rate`` frames a second (its average)."""
        return SceneCutter(self, rate)


def detect_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) a ``width``×``height`` frame is given to the detector at."""
    if width <= DETECT_WIDTH:
        return width, height
    return DETECT_WIDTH, max(1, round(height * DETECT_WIDTH / width))


class SceneCutter:
    """One video's detector: ``feed`` each decoded frame in order, then ``finish``; both give
    the indices of the frames that start a new scene (each at most ``lag`` frames back)."""

    def __init__(self, cuts: SceneCuts, rate: float) -> None:
        from modelpress.extras import require

        require("scenedetect", "video", "scene cuts in modelpress video")
        from scenedetect.detector import FlashFilter
        from scenedetect.detectors import AdaptiveDetector, ContentDetector

        self.rate = Fraction(rate).limit_denominator(1001)
        min_len = max(1, round(MIN_SCENE_S * rate))  # frames
        weights = ContentDetector.Components(*WEIGHTS)
        if cuts.detector == "content":  # SUPPRESS: a cut is told on its own frame, never later
            self.detector: Any = ContentDetector(
                threshold=cuts.threshold,
                min_scene_len=min_len,
                weights=weights,
                filter_mode=FlashFilter.Mode.SUPPRESS,
            )
        else:
            self.detector = AdaptiveDetector(
                adaptive_threshold=cuts.threshold,
                min_scene_len=min_len,
                window_width=ADAPTIVE_WINDOW,
                min_content_val=ADAPTIVE_MIN_CONTENT,
                weights=weights,
            )
        self.lag = int(self.detector.event_buffer_length)
        self.last: int | None = None

    def feed(self, index: int, bgr: np.ndarray) -> list[int]:
        """``bgr``: (h, w, 3) uint8, the same size for every frame of the video."""
        from scenedetect.common import FrameTimecode

        self.last = index
        found = self.detector.process_frame(FrameTimecode(index, fps=self.rate), bgr)
        return [tc.frame_num for tc in found]

    def finish(self) -> list[int]:
        from scenedetect.common import FrameTimecode

        if self.last is None:
            return []
        return [
            tc.frame_num
            for tc in self.detector.post_process(FrameTimecode(self.last, fps=self.rate))
        ]
