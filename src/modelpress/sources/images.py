"""Images → float arrays: the one conversion every image in modelpress goes through (Pillow,
grey or RGB, bilinear), with the checks around it (memory before making a dataset, images
shrunk to almost nothing, files Pillow cannot or should not decode)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.errors import DataSourceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _check_fits(samples: int, shape: tuple[int, ...], where: str) -> None:
    """Refuse, before making it, float32 data at ``shape`` that the free memory cannot hold."""
    from modelpress.core.memory import available_bytes, fmt_bytes

    each = math.prod(shape) * 4
    free = available_bytes()
    if free is not None and samples * each > free:
        dims = ",".join(map(str, shape))
        raise DataSourceError(
            f"{where}: {samples} samples at input shape 1,{dims} would take "
            f"{fmt_bytes(samples * each)} ({fmt_bytes(each)} each) but {fmt_bytes(free)} of "
            "memory is available; use a smaller --input-shape / input_shape"
        )


def _shrink_warning(where: str, source: tuple[int, int], target: tuple[int, int]) -> str | None:
    """A warning when resizing leaves an image under 8 pixels a side (1×1 is nothing at all)."""
    factor = min(target[0] / source[0], target[1] / source[1])
    if factor >= 1 or min(target) >= 8:
        return None
    return (
        f"{where}: {source[0]}×{source[1]} images shrunk to {target[0]}×{target[1]} (resize "
        f"factor ×{factor:.3g}): little of each image is left; use a larger input shape"
    )


def _resize_images(
    x: np.ndarray, shape: tuple[int, ...], where: str, warned: list[str] | None = None
) -> np.ndarray:
    """(N, C0, H0, W0) float → (N, C, H, W): bilinear resize, grey↔RGB by channel repeat/mean.
    A resize that leaves little of the images adds a warning to ``warned``."""
    import torch
    import torch.nn.functional as F

    if len(shape) != 3:
        raise DataSourceError(
            f"{where}: images need an input shape N,C,H,W (e.g. 1,1,32,32), got {len(shape) + 1}-D"
        )
    c, h, w = shape
    _check_fits(len(x), shape, where)
    warning = _shrink_warning(where, tuple(x.shape[-2:]), (h, w))
    if warning and warned is not None:
        warned.append(warning)
    t = torch.from_numpy(x)
    if t.shape[-2:] != (h, w):
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    if t.shape[1] != c:
        if t.shape[1] == 1:
            t = t.repeat(1, c, 1, 1)
        elif c == 1:
            t = t.mean(dim=1, keepdim=True)
        else:
            raise DataSourceError(f"{where}: cannot turn {t.shape[1]} channels into {c}")
    return t.contiguous().numpy()


# Pillow's modes for 16-bit grey PNGs (older Pillows open them as 32-bit "I"): their values run
# to 65535, and convert("L") would clip them at 255 instead of scaling.
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _read_image(
    f: Path, c: int, h: int, w: int, feed: dict[str, Any] | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as (C, H, W) float in [0, 1], and its size before resizing (H0, W0)."""
    from PIL import Image

    with warnings.catch_warnings():
        # past Pillow's pixel limit an image is a likely decompression bomb: refuse, never decode
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(f) as im:
            return image_array(im, c, h, w, feed), (im.height, im.width)


def image_array(im: Any, c: int, h: int, w: int, feed: dict[str, Any] | None = None) -> np.ndarray:
    """An open Pillow image as (C, H, W) float in [0, 1]: grey (C = 1) or RGB (C = 3), resized
    bilinearly to H×W. The one conversion every image in modelpress goes through. ``feed``
    (a recipe's ``data.preprocess``): ``resize`` the shorter side to that many pixels first
    (aspect kept) and ``crop`` the centre H×W; ``channels: bgr`` reverses the colour order."""
    from PIL import Image

    feed = feed or {}
    if feed.get("resize"):
        short = max(int(feed["resize"]), h, w) if feed.get("crop", True) else int(feed["resize"])
        scale = short / min(im.width, im.height)
        im = im.resize(
            (max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR
        )
        if feed.get("crop", True):
            left, top = (im.width - w) // 2, (im.height - h) // 2
            im = im.crop((left, top, left + w, top + h))

    if im.mode in _SIXTEEN_BIT:
        grey = np.asarray(im, dtype=np.float32) / 65535.0
        small = Image.fromarray(grey).resize((w, h), Image.BILINEAR)  # mode F
        arr = np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)[None]
        return arr if c == 1 else np.repeat(arr, 3, axis=0)
    im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if c == 1:
        return arr[None]
    arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr[::-1]) if feed.get("channels") == "bgr" else arr


def _unreadable(e: Exception) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(e, Image.DecompressionBombError | Image.DecompressionBombWarning):
        # "Image size (N pixels) exceeds limit of M pixels, could be decompression bomb ..."
        return f"a possible decompression bomb: {str(e).split(', could')[0]}"
    if isinstance(e, UnidentifiedImageError):
        return "not an image Pillow can read"
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
