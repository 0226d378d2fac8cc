"""``builtin:digits-manipulated``: real vs manipulated digit images, a binary task for cascades.

scikit-learn's 8×8 digits resized to the input shape (bilinear), each under its own light (a
background level and an ink gain) with mild sensor noise. Half the images are left as they are
(label 0, "real"); in the other half (label 1, "manipulated") a rectangle 25–50 % of each side, at
a random place, is replaced by the same rectangle of another digit image, spliced from a brighter
shot and blended in with a feathered mask (a linear ramp of 2–3 pixels around it) so that no
hard seam gives it away. A linear model on the pixels finds about 70 % of them; a small CNN
does better. Deterministic by seed; different seeds give different images.

``builtin:digits-manipulated-subtle`` is the harder variant: the spliced region comes from a shot
under almost the same light (0–6 % brighter instead of 10–25 %) and is blended over 3–5 pixels,
so a small model misses many splices that a larger one still finds.
"""

from __future__ import annotations

import numpy as np

from modelpress.errors import DataSourceError
from modelpress.sources.images import _check_fits, _resize_images

WHERE = "builtin:digits-manipulated"
SUBTLE = "builtin:digits-manipulated-subtle"
CLASS_NAMES = ["real", "manipulated"]


def _feathered_mask(
    h: int, w: int, top: int, left: int, rh: int, rw: int, feather: int
) -> np.ndarray:
    """(H, W) in [0, 1]: 1 on the rectangle, falling linearly to 0 over ``feather`` pixels
    around it."""

    def ramp(size: int, start: int, length: int) -> np.ndarray:
        i = np.arange(size)
        outside = np.maximum(start - i, i - (start + length - 1)).clip(min=0)  # 0 inside
        return np.clip(1.0 - outside / (feather + 1), 0.0, 1.0)

    return np.outer(ramp(h, top, rh), ramp(w, left, rw))


def _light(rng: np.random.Generator, glyph: np.ndarray, level: float) -> np.ndarray:
    """A glyph in [0, 1] under some light: the background lifted to ``level``, ink at a gain."""
    gain = rng.uniform(0.75, 1.0)
    return level + (gain - level) * glyph


def digits_manipulated(
    shape: tuple[int, ...], seed: int, images: int = 4000, subtle: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``images`` samples at ``shape`` (C, H, W): x float32 (N, C, H, W) in [0, 1], y int64 (N,)
    with 0 real, 1 manipulated (half each, the odd one real), and the class names; ``subtle``:
    splices under nearly the same light, blended more widely."""
    where = SUBTLE if subtle else WHERE
    brighter, feather = ((0.0, 0.06), (3, 6)) if subtle else ((0.1, 0.25), (2, 4))
    from sklearn.datasets import load_digits

    if len(shape) != 3:
        raise DataSourceError(
            f"{where}: images need an input shape N,C,H,W (e.g. 1,1,32,32), got {len(shape) + 1}-D"
        )
    c, h, w = shape
    if h < 8 or w < 8:
        raise DataSourceError(
            f"{where}: input {h}×{w} is too small to paste a region into; use 8×8 or more "
            "(e.g. --input-shape 1,1,32,32)"
        )
    if images < 10:
        raise DataSourceError(f"{where}: {images} images; make at least 10")
    _check_fits(images, shape, where)
    glyphs = (load_digits().images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    rng = np.random.default_rng(seed)
    reps = -(-images // len(glyphs))
    base = np.concatenate([rng.permutation(len(glyphs)) for _ in range(reps)])[:images]
    donor = (base + rng.integers(1, len(glyphs), images)) % len(glyphs)  # never the base itself
    y = np.zeros(images, dtype=np.int64)
    y[rng.permutation(images)[: images // 2]] = 1
    used = np.unique(np.concatenate([base, donor[y == 1]]))
    resized = _resize_images(glyphs[used][:, None], (1, h, w), where)[:, 0]  # (U, H, W)
    pool = dict(zip(used.tolist(), resized, strict=True))

    x = np.empty((images, h, w), dtype=np.float32)
    for i in range(images):
        level = rng.uniform(0.03, 0.09)
        img = _light(rng, pool[int(base[i])], level)
        if y[i]:
            rh = max(2, round(rng.uniform(0.25, 0.5) * h))
            rw = max(2, round(rng.uniform(0.25, 0.5) * w))
            top, left = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
            mask = _feathered_mask(h, w, top, left, rh, rw, int(rng.integers(*feather)))
            other = level + rng.uniform(*brighter)  # a brighter shot
            img = img * (1 - mask) + _light(rng, pool[int(donor[i])], other) * mask
        x[i] = img + rng.normal(0.0, rng.uniform(0.01, 0.03), size=(h, w))
    x = np.clip(x, 0.0, 1.0)[:, None]  # (N, 1, H, W)
    return np.ascontiguousarray(np.repeat(x, c, axis=1)), y, list(CLASS_NAMES)
