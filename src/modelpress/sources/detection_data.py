"""Detection data: images with boxes, letterboxed to the model's input as Ultralytics does.

``builtin:digits-detect``  scikit-learn's digits pasted at random scales and places on noisy
                           canvases, 1-6 per image, in colour; deterministic by seed, and the
                           validation images use digits no training image uses
``yolo:PATH/data.yaml``    the Ultralytics layout: ``path``, ``train``, ``val``, ``names``;
                           ``images/…`` with ``labels/…`` beside them, one ``cls cx cy w h`` line
                           per box, normalised. ``val`` is the validation split; the calibration
                           split is drawn from ``train``
``coco:ANN.json[:IMAGES]`` COCO instances (``bbox`` x, y, w, h in pixels); images under
                           IMAGES (default: the folder of the JSON, then its ``images/``)

Images load as RGB (or grey) float in [0, 1], letterboxed into the input shape (aspect kept,
centred, grey 114 padding), boxes mapped with them. A split's labels are an object array holding
one ``(M, 5)`` float32 array per image: ``class, x1, y1, x2, y2`` normalised to the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpress.errors import DataSourceError
from modelpress.sources.boxes import NO_LABELS, letterbox_params
from modelpress.sources.data import Dataset, Split
from modelpress.sources.images import IMAGE_SUFFIXES, _check_fits, _unreadable, image_array

DEFAULT_SHAPE = (3, 96, 96)
DIGITS_IMAGES = 1500
PAD = 114 / 255


def _labels_array(per_image: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(per_image), dtype=object)
    for i, b in enumerate(per_image):
        out[i] = np.asarray(b, dtype=np.float32).reshape(-1, 5)
    return out


def _shape(shape: tuple[int, ...] | None, where: str) -> tuple[int, int, int]:
    shape = tuple(shape) if shape is not None else DEFAULT_SHAPE
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise DataSourceError(
            f"{where}: detection images need an input shape N,C,H,W with 1 or 3 channels "
            "(e.g. --input-shape 1,3,96,96)"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


# --------------------------------------------------------------------------- letterbox


def letterbox(
    image: Any, boxes: np.ndarray, c: int, h: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """A PIL image and its boxes (M, 4) xyxy normalised to the image → (C, H, W) float in
    [0, 1] and the boxes normalised to the letterboxed input."""
    scale, left, top = letterbox_params((image.height, image.width), (h, w))
    nw, nh = round(image.width * scale), round(image.height * scale)
    canvas = np.full((c, h, w), PAD, dtype=np.float32)
    # the one image conversion (grey or RGB, 16-bit grey scaled, not clipped), then resized
    canvas[:, top : top + nh, left : left + nw] = image_array(image, c, nh, nw)
    b = boxes.astype(np.float32) * np.array([nw, nh, nw, nh], dtype=np.float32)
    b = (b + np.array([left, top, left, top], dtype=np.float32)) / np.array(
        [w, h, w, h], dtype=np.float32
    )
    return canvas, b


# --------------------------------------------------------------------------- digits-detect


def _paste_digits(
    rng: np.random.Generator, digits: np.ndarray, targets: np.ndarray, h: int, w: int
) -> tuple[np.ndarray, np.ndarray]:
    """One canvas (3, H, W) with 1-6 digits and their labels (M, 5)."""
    import torch
    import torch.nn.functional as F

    canvas = rng.uniform(0.0, 0.35, size=(3, 1, 1)) + rng.normal(0, 0.06, size=(3, h, w))
    labels, placed = [], []
    side = min(h, w)
    for _ in range(int(rng.integers(1, 7))):
        k = int(rng.integers(len(digits)))
        size = int(rng.integers(max(8, side // 7), max(9, side // 2.6)))
        for _attempt in range(20):
            x0, y0 = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
            box = np.array([x0, y0, x0 + size, y0 + size], dtype=np.float32)
            if all(_overlap(box, other) < 0.2 for other in placed):
                break
        else:
            continue
        glyph = torch.from_numpy(digits[k][None, None])
        glyph = F.interpolate(glyph, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        alpha = glyph.clamp(0, 1).numpy()
        colour = rng.uniform(0.55, 1.0, size=(3, 1, 1))
        region = canvas[:, y0 : y0 + size, x0 : x0 + size]
        canvas[:, y0 : y0 + size, x0 : x0 + size] = region * (1 - alpha) + colour * alpha
        ys, xs = np.nonzero(alpha > 0.25)  # the tight box of the ink, as an annotator draws it
        if not len(ys):
            continue
        tight = np.array([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1])
        placed.append(box)
        labels.append([targets[k], *(tight / np.array([w, h, w, h]))])
    return np.clip(canvas, 0, 1).astype(np.float32), np.asarray(labels, np.float32).reshape(-1, 5)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    return inter / float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


def digits_detect(
    shape: tuple[int, int, int], seed: int, splits: tuple[float, float, float], images: int
) -> tuple[Split, Split, Split, list[str]]:
    from sklearn.datasets import load_digits

    c, h, w = shape
    if h < 32 or w < 32:
        raise DataSourceError(
            f"builtin:digits-detect: input {h}×{w} is too small to hold several digits; use "
            "32×32 or more (e.g. --input-shape 1,3,96,96)"
        )
    _check_fits(images, shape, "builtin:digits-detect")
    d = load_digits()
    glyphs = (d.images / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(glyphs))
    cut = int(len(order) * 0.8)  # validation images draw from digits no other image uses
    pools = {"fit": order[:cut], "val": order[cut:]}
    n_val = max(1, round(images * splits[2]))
    n_cal = max(1, round(images * splits[1])) if splits[1] > 0 else 0
    n_train = images - n_val - n_cal
    parts = []
    for count, pool in ((n_train, "fit"), (n_cal, "fit"), (n_val, "val")):
        idx = pools[pool]
        xs, ys = [], []
        for _ in range(count):
            x, y = _paste_digits(rng, glyphs[idx], d.target[idx], h, w)
            xs.append(x if c == 3 else x.mean(0, keepdims=True))
            ys.append(y)
        x = np.stack(xs) if xs else np.zeros((0, c, h, w), np.float32)
        parts.append(Split([x], _labels_array(ys)))
    return parts[0], parts[1], parts[2], [str(i) for i in range(10)]


# --------------------------------------------------------------------------- YOLO


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    where = f"yolo:{path}"
    if not path.is_file():
        raise DataSourceError(f"{where}: file not found; give the path of the data set's data.yaml")
    try:
        doc = yaml.safe_load(path.read_text())
    except Exception as e:
        raise DataSourceError(f"{where}: not readable YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise DataSourceError(f"{where}: must be a mapping with path, train, val and names")
    for key in ("val", "names"):
        if not doc.get(key):
            raise DataSourceError(
                f"{where}: has no '{key}'; a YOLO data.yaml needs train, val and names "
                "(names: a list, or a mapping of class id to name)"
            )
    return doc


def _names(names: Any, where: str) -> list[str]:
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DataSourceError(f"{where}: names keys must be class ids 0, 1, …") from None
        if ids != list(range(len(ids))):
            raise DataSourceError(f"{where}: names must number the classes 0 … nc-1 without gaps")
        return [str(names[k] if k in names else names[str(k)]) for k in ids]
    raise DataSourceError(f"{where}: names must be a list or a mapping of id to name")


def _image_files(root: Path, entry: Any, where: str) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    files: list[Path] = []
    for e in entries:
        p = Path(str(e))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text().splitlines():
                if line.strip():
                    # Ultralytics' rule: "./x" is beside the list; other relative paths
                    # are under the data set's root
                    entry = line.strip()
                    base = p.parent if entry.startswith("./") else root
                    f = Path(entry)
                    files.append(f if f.is_absolute() else base / f)
        else:
            raise DataSourceError(
                f"{where}: {p} (from the data.yaml) is neither a folder nor a .txt list"
            )
    if not files:
        raise DataSourceError(f"{where}: no images under {', '.join(map(str, entries))}")
    return files


def _label_file(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


class _Counts:
    def __init__(self) -> None:
        self.bad_class = self.bad_coords = self.bad_lines = self.no_labels = 0

    def warnings(self, where: str, nc: int) -> list[str]:
        out = []
        if self.bad_class:
            out.append(
                f"{where}: {self.bad_class} label lines name a class ≥ {nc} (names has {nc}); "
                "those boxes were dropped, their images kept"
            )
        if self.bad_coords:
            out.append(
                f"{where}: {self.bad_coords} label lines have coordinates outside [0, 1]; those "
                "boxes were dropped, their images kept (YOLO labels are normalised cx cy w h)"
            )
        if self.bad_lines:
            out.append(f"{where}: {self.bad_lines} label lines are not 'cls cx cy w h'; dropped")
        if self.no_labels:
            out.append(f"{where}: {self.no_labels} images have no label file; kept as background")
        return out

    def why(self, nc: int) -> str:
        """What became of the label lines, for the error when no box is left."""
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.bad_class, f"label lines name a class ≥ {nc} (names has {nc})"),
                (self.bad_coords, "label lines have coordinates outside [0, 1]"),
                (self.bad_lines, "label lines are not 'cls cx cy w h'"),
                (self.no_labels, "images have no label file"),
            )
            if n
        ]
        return "; ".join(parts) or "every label file is empty"


def _read_yolo_labels(path: Path, nc: int, counts: _Counts) -> np.ndarray:
    if not path.is_file():
        counts.no_labels += 1
        return NO_LABELS
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError:
            counts.bad_lines += 1
            continue
        if len(values) < 5:
            counts.bad_lines += 1
            continue
        cls, cx, cy, bw, bh = values[:5]
        if len(values) > 5 and len(values) % 2 == 1:  # a segment: cls x1 y1 x2 y2 x3 y3 …
            xs, ys = values[1::2], values[2::2]  # its box, as Ultralytics takes it
            cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
            bw, bh = max(xs) - min(xs), max(ys) - min(ys)
        if not 0 <= cls < nc or cls != int(cls):  # range first: int() of NaN or inf raises
            counts.bad_class += 1
            continue
        x1, y1, x2, y2 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        if not all(0 <= v <= 1 for v in (cx, cy, bw, bh)) or bw <= 0 or bh <= 0:  # NaN fails
            counts.bad_coords += 1
            continue
        rows.append([cls, max(x1, 0), max(y1, 0), min(x2, 1), min(y2, 1)])
    return np.asarray(rows, np.float32).reshape(-1, 5)


def _load_images(
    files: list[Path],
    boxes: list[np.ndarray],
    shape: tuple[int, int, int],
    where: str,
    root: Path,
) -> Split:
    """Letterbox every image; unreadable ones are listed in one error."""
    from PIL import Image

    c, h, w = shape
    _check_fits(len(files), shape, where)
    xs, ys, bad = [], [], []
    for f, b in zip(files, boxes, strict=True):
        try:
            with Image.open(f) as im:
                x, nb = letterbox(im, b[:, 1:5], c, h, w)
        except FileNotFoundError:
            bad.append(f"{_rel(f, root)} (missing)")
            continue
        except Exception as e:
            bad.append(f"{_rel(f, root)} ({_unreadable(e)})")
            continue
        xs.append(x)
        ys.append(np.concatenate([b[:, :1], nb], axis=1))
    if bad:
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataSourceError(
            f"{where}: {len(bad)} of {len(files)} images cannot be read: "
            f"{'; '.join(bad[:5])}{more}; fix the paths or remove their annotations"
        )
    return Split([np.stack(xs)], _labels_array(ys))


def _rel(f: Path, root: Path) -> str:
    try:
        return str(f.relative_to(root))
    except ValueError:
        return str(f)


def yolo(
    path: Path, shape: tuple[int, int, int], seed: int, calib_share: float, warned: list[str]
) -> tuple[Split, Split, Split, list[str]]:
    where = f"yolo:{path}"
    doc = _yaml(path)
    names = _names(doc["names"], where)
    root = Path(str(doc.get("path") or "."))
    root = root if root.is_absolute() else (path.parent / root).resolve()
    counts = _Counts()
    splits = {}
    for key in ("train", "val"):
        if not doc.get(key):
            continue
        files = _image_files(root, doc[key], f"{where} ({key})")
        labels = [_read_yolo_labels(_label_file(f), len(names), counts) for f in files]
        splits[key] = _load_images(files, labels, shape, f"{where} ({key})", root)
    warned.extend(counts.warnings(where, len(names)))
    if not any(len(b) for split in splits.values() for b in split.labels):
        raise DataSourceError(
            f"{where}: no ground-truth box to score: {counts.why(len(names))}; mAP over 0 boxes "
            "means nothing, so fix the labels (labels/… beside images/…, one 'cls cx cy w h' "
            "line per box, cls below the number of names)"
        )
    val = splits["val"]
    train = splits.get("train", Split([val.inputs[0][:0]], _labels_array([])))
    n_cal = round(len(train) * calib_share) if len(train) else 0
    order = np.random.default_rng(seed).permutation(len(train))
    calib, fit = train.take(np.sort(order[:n_cal])), train.take(np.sort(order[n_cal:]))
    return fit, calib, val, names


# --------------------------------------------------------------------------- entry


def load_detection(
    source: str,
    *,
    sample_shape: tuple[int, ...] | None,
    names: list[str] | None,
    seed: int,
    splits: tuple[float, float, float],
    max_samples: int | None,
    normalize: tuple[list[float], list[float]] | None,
) -> Dataset:
    kind, _, arg = source.partition(":")
    where = source
    shape = _shape(sample_shape, where)
    warned: list[str] = []
    notes: list[str] = []
    if kind == "builtin":
        images = DIGITS_IMAGES if max_samples is None else max(10, max_samples)
        fit, cal, val, class_names = digits_detect(shape, seed, splits, images)
        if max_samples is not None:
            notes.append(f"{images} images (data.max_samples)")
    elif kind == "yolo":
        fit, cal, val, class_names = yolo(Path(arg), shape, seed, splits[1], warned)
    else:
        from modelpress.sources.coco_data import coco  # it reads this module's loader

        fit, cal, val, class_names = coco(arg, shape, seed, splits, warned)
    if max_samples is not None and kind != "builtin":
        fit, cal, val = (s.head(max_samples) for s in (fit, cal, val))
        notes.append(f"at most {max_samples} images per split (data.max_samples)")
    if normalize is not None:
        mean, std = (np.asarray(v, dtype=np.float32).reshape(1, -1, 1, 1) for v in normalize)
        for part in (fit, cal, val):
            part.inputs[0] = ((part.inputs[0] - mean) / std).astype(np.float32)
    boxes = sum(len(b) for s in (fit, cal, val) for b in s.labels)
    _check_validation_boxes(val, boxes, where)
    notes.append(f"{boxes} boxes in {len(fit) + len(cal) + len(val)} images")
    return Dataset(
        source=source,
        train=fit,
        calibration=cal,
        validation=val,
        input_names=names[:1] if names else ["images"],
        num_classes=len(class_names),
        class_names=class_names,
        suggested_task="detection",
        notes=notes,
        warnings=warned,
    )


def _check_validation_boxes(val: Split, boxes: int, where: str) -> None:
    """mAP is scored on the validation split: without a box there, every figure is 0.0 over
    nothing. (A reader whose data hold no usable box at all says why itself.)"""
    if sum(len(b) for b in val.labels):
        return
    raise DataSourceError(
        f"{where}: the validation split ({len(val)} images) holds no ground-truth box (the "
        f"{boxes} boxes are all in the training and calibration images), and mAP over 0 boxes "
        "means nothing; label the validation images, or give more of the data to validation "
        "(data.splits.validation, data.max_samples)"
    )


def is_detection_source(source: str) -> bool:
    kind, _, arg = source.partition(":")
    return kind in ("yolo", "coco") or (kind == "builtin" and arg == "digits-detect")
