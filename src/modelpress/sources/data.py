"""Data sources → deterministic train / calibration / validation splits (numpy arrays).

``builtin:digits``         scikit-learn's bundled 8×8 handwritten digits, resized to the input
                           shape (bilinear) with 1 or 3 channels, scaled to [0, 1]
``builtin:breast_cancer``  30 tabular features, binary; standardised with train-split statistics
``builtin:digits-manipulated``  digits, half with a region spliced from another digit: real vs
                           manipulated, binary (``manipulated_data``), 4000 images made by seed;
                           ``builtin:digits-manipulated-subtle``: the splices harder to see
``folder:PATH``            one sub-folder per class of PNG/JPEG images, resized to the input shape
``npz:PATH``               arrays used exactly as given: ``x`` (or ``x_NAME`` per model input),
                           optional ``y``. No resizing or normalising unless the recipe asks.
The three splits are disjoint (stratified by label when there are labels), fixed by the seed.
Samples holding NaN/Inf are refused unless the recipe allows them (``data.allow_nonfinite``);
data that would not fit in memory at the input shape is refused before it is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.core.inputs import InputSpec
from modelpress.errors import DataSourceError
from modelpress.sources.images import (
    IMAGE_SUFFIXES,
    _check_fits,
    _read_image,
    _resize_images,
    _shrink_warning,
    _unreadable,
)


@dataclass
class Split:
    inputs: list[np.ndarray]  # one array per model input, first dim N
    labels: np.ndarray | None  # (N,) int64, or None (fidelity data)

    def __len__(self) -> int:
        return len(self.inputs[0])

    def take(self, idx: np.ndarray) -> Split:
        return Split(
            [a[idx] for a in self.inputs], None if self.labels is None else self.labels[idx]
        )

    def head(self, n: int) -> Split:
        return self.take(np.arange(min(n, len(self))))

    def batches(self, batch_size: int) -> Iterator[tuple[list[np.ndarray], np.ndarray | None]]:
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            yield [a[sl] for a in self.inputs], None if self.labels is None else self.labels[sl]

    def sample_batch(self, batch: int) -> list[np.ndarray]:
        """The first ``batch`` samples (tiled if the split is smaller): real data for timing."""
        idx = np.arange(batch) % len(self)
        return [np.ascontiguousarray(a[idx]) for a in self.inputs]


@dataclass
class Dataset:
    source: str
    train: Split
    calibration: Split
    validation: Split
    input_names: list[str]
    num_classes: int | None
    class_names: list[str] | None = None
    suggested_task: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown to the user as they load
    nonfinite_samples: int = 0  # samples kept with NaN/Inf (data.allow_nonfinite)

    def input_specs(self, batch: int = 1) -> list[InputSpec]:
        return [
            InputSpec(name, (batch, *a.shape[1:]), str(a.dtype))
            for name, a in zip(self.input_names, self.validation.inputs, strict=True)
        ]

    def summary(self) -> dict:
        return {
            "source": self.source,
            "train": len(self.train),
            "calibration": len(self.calibration),
            "validation": len(self.validation),
            "num_classes": self.num_classes,
            "inputs": [s.describe() for s in self.input_specs()],
            **({"nonfinite_samples": self.nonfinite_samples} if self.nonfinite_samples else {}),
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        }


# --------------------------------------------------------------------------- loading


def _digits(
    shape: tuple[int, ...] | None, warned: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    if shape is None:
        shape = (1, 8, 8)
    if len(shape) == 1:  # a flat vector model (mlp): (N, 64) at native size only
        if shape[0] != 64:
            raise DataSourceError(
                f"builtin:digits: a flat input has 64 features (8×8), not {shape[0]}; "
                "use an image shape like 1,1,32,32 to resize"
            )
        return x.reshape(len(x), 64), d.target.astype(np.int64), [str(c) for c in range(10)]
    return (
        _resize_images(x, shape, "builtin:digits", warned),
        d.target.astype(np.int64),
        [str(c) for c in range(10)],
    )


def _breast_cancer() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data.astype(np.float32), d.target.astype(np.int64), list(d.target_names)


def _folder(
    path: Path,
    shape: tuple[int, ...] | None,
    warned: list[str],
    feed: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    where = f"folder:{path}"
    if not path.is_dir():
        raise DataSourceError(f"{where}: folder not found")
    classes = sorted(
        d.name
        for d in path.iterdir()
        if d.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir())
    )
    if not classes:
        raise DataSourceError(
            f"{where}: no class sub-folders with images ({', '.join(IMAGE_SUFFIXES)}); "
            "put the images of each class in a folder of its own"
        )
    if shape is None or len(shape) != 3:
        raise DataSourceError(
            f"{where}: images need an input shape N,C,H,W, e.g. --input-shape 1,3,64,64"
        )
    c, h, w = shape
    if c not in (1, 3):
        raise DataSourceError(f"{where}: images have 1 (grey) or 3 (RGB) channels, not {c}")
    files = [
        (label, f)
        for label, name in enumerate(classes)
        for f in sorted((path / name).iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    _check_fits(len(files), shape, where)
    xs, ys, bad = [], [], {}  # bad: reason → files
    smallest: tuple[float, tuple[int, int]] = (math.inf, (h, w))  # (factor, size before)
    for label, f in files:
        try:
            arr, size = _read_image(f, c, h, w, feed)
        except Exception as e:  # Pillow raises OSError, SyntaxError, EOFError, struct.error, ...
            # for damaged files, DecompressionBombError / the warning (made an error) for bombs
            bad.setdefault(_unreadable(e), []).append(str(f.relative_to(path)))
            continue
        smallest = min(smallest, (min(h / size[0], w / size[1]), size))
        xs.append(arr)
        ys.append(label)
    if bad:  # every bad file at once, the first 10 by name: one fix, not one rerun per file
        count, shown, listed = sum(map(len, bad.values())), [], 0
        for reason, names in bad.items():
            if listed < 10:
                shown.append(f"{', '.join(names[: 10 - listed])} ({reason})")
            listed += len(names)
        more = f"; and {count - 10} more" if count > 10 else ""
        raise DataSourceError(
            f"{where}: {count} of {len(files)} images cannot be read: "
            f"{'; '.join(shown)}{more}; remove or replace them"
        )
    warning = _shrink_warning(where, smallest[1], (h, w))
    if warning:
        warned.append(warning)
    return np.stack(xs), np.asarray(ys, dtype=np.int64), classes


def _npz(
    path: Path, names: list[str] | None
) -> tuple[list[np.ndarray], list[str], np.ndarray | None]:
    where = f"npz:{path}"
    if not path.is_file():
        raise DataSourceError(f"{where}: file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # numpy raises several types for a bad archive
        raise DataSourceError(f"{where}: not a readable .npz archive ({e})") from None
    y = arrays.pop("y", None)
    if "x" in arrays:
        inputs, input_names = [arrays["x"]], [names[0] if names else "input"]
    else:
        keys = [k for k in arrays if k.startswith("x_")]
        if not keys:
            raise DataSourceError(
                f"{where}: needs an array 'x' (or 'x_NAME' per model input); found {sorted(arrays)}"
            )
        if names and all(f"x_{n}" in arrays for n in names):
            keys = [f"x_{n}" for n in names]
        inputs, input_names = [arrays[k] for k in keys], [k[2:] for k in keys]
    n = len(inputs[0])
    if any(len(a) != n for a in inputs) or (y is not None and len(y) != n):
        raise DataSourceError(f"{where}: inputs and y must have the same first dimension (samples)")
    if y is not None:
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataSourceError(f"{where}: y must be a 1-D array of integer class labels")
        if (y < 0).any():
            first = int(np.argmax(y < 0))
            raise DataSourceError(
                f"{where}: y[{first}] is {y[first]} ({int((y < 0).sum())} negative labels); "
                "class labels run 0, 1, … number of classes − 1"
            )
        y = y.astype(np.int64)
    return inputs, input_names, y


def _ranges(values: np.ndarray) -> str:
    """``0–9, 12, 1000``: sorted integers as runs."""
    runs: list[list[int]] = []
    for v in (int(x) for x in values):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    shown = [f"{a}–{b}" if b > a + 1 else (f"{a}, {b}" if b > a else str(a)) for a, b in runs]
    return ", ".join(shown[:6]) + (", …" if len(shown) > 6 else "")


def _check_label_ids(y: np.ndarray, where: str) -> list[str]:
    """The number of classes is the largest label + 1. Labels that leave class ids unused get a
    warning with the count of classes and the rarest labels; a few samples far beyond all the
    others (labels 0–9 and one 1000) is a typo, refused: it would build a 1001-class model."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or classes[-1] == len(classes) - 1:
        return []  # 0 … k-1, every id used (one class is the task's to judge)
    nc = int(classes[-1]) + 1
    gaps = np.diff(classes) - 1  # unused ids between consecutive labels
    cut = int(np.argmax(gaps))
    above = classes[cut + 1 :]
    few = int(counts[cut + 1 :].sum())
    if gaps[cut] > cut + 1 and few <= max(2, 0.01 * len(y)):
        labels = ", ".join(str(int(v)) for v in above[:3]) + (", …" if len(above) > 3 else "")
        many = len(above) > 1
        raise DataSourceError(
            f"{where}: label{'s' if many else ''} {labels} ({few} of {len(y)} samples) "
            f"{'lie' if many else 'lies'} far beyond the others ({_ranges(classes[: cut + 1])}), "
            f"which would make a {nc}-class model for {len(classes)} labels: a typo? Fix y "
            "(class labels run 0, 1, … number of classes − 1)"
        )
    rarest = ""
    if counts.min() < counts.max():
        rare = sorted(zip(counts.tolist(), classes.tolist(), strict=True))[:3]
        shown = ", ".join(f"{c} ({n} sample{'s' if n > 1 else ''})" for n, c in rare)
        rarest = f"; rarest labels: {shown}"
    return [
        f"{where}: labels {_ranges(classes)} occur, so the model gets {nc} classes (the largest "
        f"label + 1) and {nc - len(classes)} of them no sample{rarest}; renumber y 0 … k−1 if "
        "those classes do not exist"
    ]


def _nonfinite_rows(inputs: list[np.ndarray]) -> np.ndarray:
    """(N,) bool: which samples hold a NaN or Inf in any floating-point input."""
    bad = np.zeros(len(inputs[0]), dtype=bool)
    for a in inputs:
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
            bad |= ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return bad


def _split_indices(
    n: int, labels: np.ndarray | None, train: float, calib: float, val: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint index sets; stratified when every class has enough samples."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)

    def cut(pool: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
        if size <= 0:
            return pool, pool[:0]
        strat = None if labels is None else labels[pool]
        if strat is not None and np.unique(strat, return_counts=True)[1].min() < 2:
            strat = None
        try:
            return tuple(train_test_split(pool, test_size=size, random_state=seed, stratify=strat))
        except ValueError:  # too few samples per class for the requested size: unstratified
            return tuple(train_test_split(pool, test_size=size, random_state=seed))

    rest, val_idx = cut(idx, val)
    if calib > 0:
        rest, calib_idx = cut(rest, calib / (1 - val))
    else:
        calib_idx = rest[:0]
    if train + calib + val < 1 - 1e-9 and train > 0:  # use only the asked share for training
        keep = round(n * train)
        rest = rest[:keep]
    return np.sort(rest), np.sort(calib_idx), np.sort(val_idx)


def load_data(
    source: str,
    *,
    input_specs: list[InputSpec] | None = None,
    seed: int = 0,
    splits: tuple[float, float, float] = (0.7, 0.1, 0.2),
    max_samples: int | None = None,
    normalize: tuple[list[float], list[float]] | None = None,
    resize: bool = False,
    allow_nonfinite: bool = False,
    text: dict[str, Any] | None = None,
    feed: dict[str, Any] | None = None,
) -> Dataset:
    """Load a data source and split it. ``input_specs`` (batch first) sets the sample shape;
    ``text``: a text source's tokenizer, max_length, text_column and label_column; ``feed``:
    how images are resized, cropped and ordered (``sources.images.image_array``)."""
    kind, _, arg = source.partition(":")
    sample_shape = tuple(input_specs[0].shape[1:]) if input_specs else None
    names = [s.name for s in input_specs] if input_specs else None
    from modelpress.sources.detection_data import is_detection_source, load_detection

    if is_detection_source(source):
        return load_detection(
            source,
            sample_shape=sample_shape,
            names=names,
            seed=seed,
            splits=splits,
            max_samples=max_samples,
            normalize=normalize,
        )
    suggested, class_names, notes = None, None, []
    warned: list[str] = []
    if kind == "builtin" and arg == "digits":
        x, y, class_names = _digits(sample_shape, warned)
        inputs = [x]
    elif kind == "builtin" and arg in ("digits-manipulated", "digits-manipulated-subtle"):
        from modelpress.sources.manipulated_data import digits_manipulated

        subtle = arg.endswith("-subtle")
        x, y, class_names = digits_manipulated(sample_shape or (1, 32, 32), seed, subtle=subtle)
        inputs, suggested = [x], "binary"
    elif kind == "builtin" and arg == "breast_cancer":
        x, y, class_names = _breast_cancer()
        inputs, suggested = [x], "binary"
    elif kind == "builtin":
        raise DataSourceError(
            f"builtin:{arg}: unknown; built-in data are builtin:digits, builtin:breast_cancer, "
            "builtin:digits-detect, builtin:digits-manipulated, "
            "builtin:digits-manipulated-subtle"
        )
    elif kind == "folder":
        x, y, class_names = _folder(Path(arg), sample_shape, warned, feed)
        inputs = [x]
    elif kind in ("text", "jsonl", "csv"):
        from modelpress.sources.text_data import load_text

        inputs, names, y, class_names = load_text(source, **(text or {"tokenizer": None}))
        if y is None:
            suggested = "fidelity"
    elif kind == "npz":
        inputs, npz_names, y = _npz(Path(arg), names)
        names = npz_names if not names or len(names) != len(inputs) else names
        if resize and sample_shape is not None:
            inputs = [_resize_images(inputs[0].astype(np.float32), sample_shape, source, warned)]
        if y is None:
            suggested = "fidelity"
    else:
        raise DataSourceError(
            f"'{source}': use builtin:NAME, folder:PATH, npz:PATH, text:FILE, jsonl:FILE, "
            "csv:FILE, yolo:DATA.yaml or coco:ANNOTATIONS.json"
        )
    names = (
        names
        if names and len(names) == len(inputs)
        else (["input"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))])
    )
    n = len(inputs[0])
    if n < 10:
        raise DataSourceError(f"{source}: only {n} samples; modelpress needs at least 10 to split")
    if y is not None:  # the number of classes comes from the largest label: check the ids
        warned.extend(_check_label_ids(y, source))
    nonfinite = _nonfinite_rows(inputs)
    if nonfinite.any() and not allow_nonfinite:
        raise DataSourceError(
            f"{source}: sample {int(np.argmax(nonfinite))} holds NaN or Inf "
            f"({int(nonfinite.sum())} of {n} samples do); clean the data, or set "
            "data.allow_nonfinite: true in the recipe to keep them"
        )
    if max_samples is not None and max_samples < n:
        keep, _, _ = _split_indices(n, y, max_samples / n, 0.0, 1 - max_samples / n, seed)
        inputs, y = [a[keep] for a in inputs], None if y is None else y[keep]
        nonfinite = nonfinite[keep]
        n = len(keep)
        notes.append(f"subsampled to {n} samples (data.max_samples)")
    if normalize is not None:
        mean, std = (np.asarray(v, dtype=np.float32) for v in normalize)
        shape = (1, -1) + (1,) * (inputs[0].ndim - 2)
        inputs[0] = (inputs[0] - mean.reshape(shape)) / std.reshape(shape)
    tr, ca, va = _split_indices(n, y, *splits, seed)
    whole = Split(inputs, y)
    dataset = Dataset(
        source=source,
        train=whole.take(tr),
        calibration=whole.take(ca),
        validation=whole.take(va),
        input_names=names,
        num_classes=None if y is None else int(y.max()) + 1,
        class_names=class_names,
        suggested_task=suggested,
        notes=notes,
        warnings=warned,
        nonfinite_samples=int(nonfinite.sum()),
    )
    if source == "builtin:breast_cancer":  # standardise with train statistics only
        mu = dataset.train.inputs[0].mean(0)
        sd = dataset.train.inputs[0].std(0) + 1e-6
        for part in (dataset.train, dataset.calibration, dataset.validation):
            part.inputs[0] = ((part.inputs[0] - mu) / sd).astype(np.float32)
    return dataset
