"""Short test videos written with PyAV, made on the fly (nothing binary is committed).

``make_video`` draws scikit-learn digits (8×8, upscaled) on a coloured background: each scene
shows another digit in another palette, drifting a pixel or two with mild noise within the
scene. ``palette`` keeps one palette for every scene and ``digits`` names the digit each scene
shows: scenes that differ by content alone. An optional span of pure black frames stands in for
a dropped signal. ``truncate`` copies the first part of a file, as a broken download leaves it;
``damage`` overwrites bytes in the middle of a copy, as a bad disk sector or a bad transfer
leaves it; ``make_audio_only`` and ``make_empty`` write files with no video to decode.

Write ``.mkv`` (or ``.avi``) for truncation tests: Matroska declares the duration up front and
keeps no index at the end, so a truncated copy still opens and decodes up to where it is cut.
An ``.mp4`` keeps its index (``moov``) at the end unless written with ``faststart=True``: cut
short, it no longer opens at all; with faststart it decodes up to the cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelpress.extras import require

# (background, ink) per scene, far apart in every channel
PALETTES = [
    ((20, 30, 110), (250, 230, 120)),
    ((210, 190, 40), (40, 20, 90)),
    ((30, 140, 50), (240, 240, 250)),
    ((160, 40, 150), (20, 230, 230)),
    ((235, 235, 235), (10, 10, 10)),
    ((90, 90, 90), (250, 120, 30)),
]


def default_codec() -> str:
    av = require("av", "video", "writing test videos")
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def scene_starts(seconds: float, fps: int, scenes: int) -> list[int]:
    """The first frame index of each scene: ``scenes`` equal parts of the clip."""
    n = round(seconds * fps)
    return [round(i * n / scenes) for i in range(scenes)]


def digit_frames(
    seconds: float,
    fps: int = 25,
    size: int = 64,
    seed: int = 0,
    scenes: int = 2,
    black: tuple[float, float] | None = None,
    palette: int | None = None,
    digits: Sequence[int] | None = None,
):
    """Yield (H, W, 3) uint8 frames, one per 1/fps s (see the module's docstring)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    if scenes < 1 or size < 8:
        raise ValueError("a test video needs a scene at least and 8×8 pixels or more")
    if digits is not None and len(digits) != scenes:
        raise ValueError(f"digits: one a scene ({scenes}), got {len(digits)}")
    rng = np.random.default_rng(seed)
    data = load_digits()
    glyphs = data.images / 16.0  # (1797, 8, 8) in [0, 1]
    if digits is None:
        picks = rng.choice(len(glyphs), scenes, replace=False)
    else:  # an image of each named digit
        picks = [int(rng.choice(np.flatnonzero(data.target == d))) for d in digits]
    side = max(4, int(size * 0.6))
    starts = scene_starts(seconds, fps, scenes)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(round(seconds * fps)):
        t = i / fps
        if black and black[0] <= t < black[1]:
            yield np.zeros((size, size, 3), np.uint8)
            continue
        s = max(k for k, start in enumerate(starts) if start <= i)
        colours = PALETTES[(s if palette is None else palette) % len(PALETTES)]
        bg, ink = (np.array(c, np.float32) for c in colours)
        glyph = Image.fromarray((glyphs[picks[s]] * 255).astype(np.uint8)).resize(
            (side, side), Image.Resampling.BILINEAR
        )
        # slight motion: the digit drifts along a small circle
        dy = round(2 * np.sin(2 * np.pi * t / 1.6))
        dx = round(2 * np.cos(2 * np.pi * t / 1.6))
        top, left = (size - side) // 2 + dy, (size - side) // 2 + dx
        alpha = np.zeros((size, size), np.float32)
        inside = (yy >= top) & (yy < top + side) & (xx >= left) & (xx < left + side)
        alpha[inside] = (np.asarray(glyph, np.float32) / 255.0).ravel()
        img = bg * (1 - alpha[..., None]) + ink * alpha[..., None]
        img += rng.normal(0, 3.0, img.shape)
        yield np.clip(img, 0, 255).astype(np.uint8)


def make_video(
    path: Path | str,
    seconds: float,
    fps: int = 25,
    size: int = 64,
    seed: int = 0,
    codec: str | None = None,
    scenes: int = 2,
    black: tuple[float, float] | None = None,
    corrupt_packets: tuple[int, int] | None = None,
    faststart: bool = False,
    palette: int | None = None,
    digits: Sequence[int] | None = None,
) -> Path:
    """Write a ``seconds`` long clip of ``size``×``size`` digit frames at ``fps`` to ``path``
    (the container from its suffix); ``black``: a span (start, end) in seconds of black
    frames; ``corrupt_packets``: packets [start, end) get random bytes for their payload
    (with ``codec="mpeg4"`` each then fails to decode); ``faststart``: an MP4's index before
    its frames; ``palette``, ``digits``: see ``digit_frames``. Returns ``path``."""
    av = require("av", "video", "writing test videos")
    path = Path(path)
    codec = codec or default_codec()
    rng = np.random.default_rng(seed)
    written = 0
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}

        def mux(packets: list) -> None:
            nonlocal written
            for packet in packets:
                if corrupt_packets and corrupt_packets[0] <= written < corrupt_packets[1]:
                    bad = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                    bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                    bad.stream, bad.is_keyframe = packet.stream, packet.is_keyframe
                    packet = bad
                container.mux(packet)
                written += 1

        for img in digit_frames(seconds, fps, size, seed, scenes, black, palette, digits):
            mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        mux(stream.encode())  # flush the encoder
    return path


def make_audio_only(path: Path | str, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A file with one audio stream (a quiet tone) and no video."""
    av = require("av", "video", "writing test videos")
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        n = int(seconds * rate)
        tone = (1000 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_empty(path: Path | str, size: int = 64, fps: int = 25) -> Path:
    """A file with a video stream that holds no frame (write ``.avi``: a Matroska or MP4 file
    without a packet does not open at all)."""
    av = require("av", "video", "writing test videos")
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # the header, with no packet after it
    return path


def truncate(path: Path | str, out: Path | str, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``path``'s bytes to ``out``."""
    if not 0 < fraction < 1:
        raise ValueError("fraction: between 0 and 1")
    data = Path(path).read_bytes()
    out = Path(out)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def damage(path: Path | str, out: Path | str, at: float, length: float, seed: int = 0) -> Path:
    """Copy ``path`` to ``out`` with random bytes over ``length`` of it (a fraction of its
    size) from ``at`` (a fraction too): damage in the middle, the file as long as before."""
    if not (0 < at < 1 and length > 0 and at + length < 1):
        raise ValueError("at and length: fractions of the file, the damage inside it")
    data = bytearray(Path(path).read_bytes())
    start, n = int(len(data) * at), max(1, int(len(data) * length))
    data[start : start + n] = np.random.default_rng(seed).integers(0, 256, n, np.uint8).tobytes()
    out = Path(out)
    out.write_bytes(bytes(data))
    return out
