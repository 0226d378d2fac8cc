"""What ``modelpress cascade run`` reads: image files, folders of images and .npz archives, as
batches at the stages' input shape, streamed (a folder of 100 000 images is never held at once).

Images are read as ``folder:`` data are (``sources.images.image_array``): grey or RGB, resized
bilinearly to H×W, float in [0, 1]. A cascade's stages load their data without ``normalize``
(``cascade.open_stage`` passes none), so the images get nothing more.

The rules for an .npz archive:
  * the array is the archive's only one, else the one named ``x``, ``inputs`` or ``images``
    (first found in that order); any other arrays (``y`` …) are left alone;
  * (N, C, H, W) floating point: the stages' input exactly, used as given (as ``npz:`` data are:
    no resizing, no scaling);
  * (N, H, W) or (N, H, W, C) uint8 with C 1, 3 or 4: pixels, each made a Pillow image and read
    as an image file is (resized, grey ↔ RGB, alpha dropped, /255).
Items are named by their file (``file.npz#i`` in an archive). An item that cannot be read (a
damaged image, a decompression bomb, a dangling symlink in a folder, a sample holding NaN/Inf) is
skipped, counted and named; a missing
path, a folder without images or an archive of the wrong shape stops the run before it starts.
Folders are walked recursively in sorted order; their other files (.npz included) are counted,
not read.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from modelpress.errors import ModelpressError, first_line
from modelpress.sources import images as pictures  # (`images` names lists here)

# what Pillow and the image reader take; the .npz archives given by name are the other input
IMAGE_SUFFIXES = (*pictures.IMAGE_SUFFIXES, ".webp", ".tif", ".tiff")
NPZ_KEYS = ("x", "inputs", "images")
BATCH = 64


class InputsError(ModelpressError):
    """The inputs of ``cascade run`` cannot be read as given."""


@dataclass
class Batch:
    ids: list[str]  # an item's file, or ``file.npz#i``
    x: np.ndarray  # (B, *sample shape) in the stages' dtype


@dataclass
class _Archive:
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    pixels: bool  # (N, H, W[, C]) uint8 read as images; else used as given


@dataclass
class Inputs:
    """A run's INPUTS resolved: image files (folders listed) and .npz archives, in the order
    given. ``batches`` fills ``read``, ``skipped`` and ``warnings`` as it goes."""

    files: list[Path]
    ignored: int = 0  # files in the folders that are not images
    read: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, why)
    warnings: list[str] = field(default_factory=list)

    def batches(
        self, shape: tuple[int, ...], dtype: str | None = "float32", size: int = BATCH
    ) -> Iterator[Batch]:
        """(B, *shape) batches of ``size`` items; every archive is checked against ``shape``
        before the first one."""
        target = np.dtype(dtype or "float32")
        archives = {f: _archive(f, shape, target) for f in self.files if _is_npz(f)}
        images = [f for f in self.files if not _is_npz(f)]
        if images and (len(shape) != 3 or shape[0] not in (1, 3)):
            dims = ", ".join(map(str, shape))
            raise InputsError(
                f"{images[0]}: the stages take input (N, {dims}), not images; give .npz arrays "
                f"of shape (N, {dims})"
            )
        ids: list[str] = []
        xs: list[np.ndarray] = []
        for item, x in self._items(shape, target, archives):
            ids.append(item)
            xs.append(x)
            if len(ids) == size:
                yield Batch(ids, np.stack(xs))
                ids, xs = [], []
        if ids:
            yield Batch(ids, np.stack(xs))

    def skipped_line(self, limit: int = 10) -> str:
        """The skipped items in one line, the first ``limit`` by name, grouped by reason."""
        reasons: dict[str, list[str]] = {}
        for item, why in self.skipped:
            reasons.setdefault(why, []).append(item)
        shown, listed = [], 0
        for why, items in reasons.items():
            if listed < limit:
                shown.append(f"{', '.join(items[: limit - listed])} ({why})")
            listed += len(items)
        more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return "; ".join(shown) + more

    # ------------------------------------------------------------------ reading
    def _items(
        self, shape: tuple[int, ...], target: np.dtype, archives: dict[Path, _Archive]
    ) -> Iterator[tuple[str, np.ndarray]]:
        smallest: tuple[float, tuple[int, int], str] | None = None  # (factor, size, item)
        for f in self.files:
            if f in archives:
                a = archives[f]
                for start, chunk in _chunks(f, a):
                    for j, row in enumerate(chunk):
                        item = f"{f}#{start + j}"
                        if a.pixels:
                            x = _pixels(row, shape)
                            size = (row.shape[0], row.shape[1])
                        else:
                            x = row.astype(target, copy=False)
                            size = None
                        if not _finite(x):
                            self.skipped.append((item, "holds NaN or Inf"))
                            continue
                        if size:
                            smallest = _smaller(smallest, size, shape, item)
                        self.read += 1
                        yield item, x
                continue
            if _dangling(f):
                self.skipped.append((str(f), f"a dangling symlink to {_target(f)}"))
                continue
            try:
                x, size = pictures._read_image(f, *shape)
            except Exception as e:  # Pillow raises OSError, SyntaxError, EOFError, struct.error,
                # ... for damaged files, DecompressionBombError (or the warning, made an error)
                self.skipped.append((str(f), pictures._unreadable(e)))
                continue
            smallest = _smaller(smallest, size, shape, str(f))
            self.read += 1
            yield str(f), x.astype(target, copy=False)
        if smallest is not None:
            warning = pictures._shrink_warning(smallest[2], smallest[1], shape[1:])
            if warning:
                self.warnings.append(warning)


def resolve(paths: list[Path]) -> Inputs:
    """Every path checked and folders listed before any work: one line for the first bad one."""
    files: list[Path] = []
    ignored = 0
    for p in paths:
        if _dangling(p):
            raise InputsError(
                f"{p}: a symlink to {_target(p)}, which does not exist; give image files, "
                "folders of images or .npz files"
            )
        if not p.exists():
            raise InputsError(f"{p}: not found; give image files, folders of images or .npz files")
        if p.is_dir():
            # a dangling symlink is neither a file nor a folder: kept, so that it is counted
            # and named like a damaged image instead of vanishing from the results
            found = sorted(
                (f for f in p.rglob("*") if f.is_file() or _dangling(f)),
                key=lambda f: f.relative_to(p).parts,
            )
            images = [f for f in found if f.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise InputsError(
                    f"{p}: no images in this folder or below ({', '.join(IMAGE_SUFFIXES)}, "
                    f"{len(found)} other files); give a folder of images, or .npz files by name"
                )
            files += images
            ignored += len(found) - len(images)
        elif _is_npz(p) or p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            raise InputsError(
                f"{p}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor an .npz archive; give "
                "image files, folders of images or .npz files"
            )
    return Inputs(files, ignored)


def _dangling(f: Path) -> bool:
    """A symlink whose target is gone (or that points at itself, round a loop)."""
    try:
        return f.is_symlink() and not f.exists()
    except OSError:  # a symlink loop: ELOOP
        return True


def _target(f: Path) -> str:
    try:
        return str(f.readlink())
    except OSError as e:
        return f"(unreadable: {first_line(e)})"


def _is_npz(f: Path) -> bool:
    return f.suffix.lower() == ".npz"


def _header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """An .npy member's (shape, Fortran order, dtype), read from its header alone."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f".npy format version {version[0]}.{version[1]} is not read here")


def _archive(f: Path, shape: tuple[int, ...], target: np.dtype) -> _Archive:
    """The archive's input array, from its header, checked against the stages' input."""
    try:
        with zipfile.ZipFile(f) as z:
            keys = [n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy")]
            key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
            if key is None:
                raise InputsError(
                    f"{f}: holds arrays {', '.join(sorted(keys)) or '(none)'}; name the input "
                    f"array {' or '.join(NPZ_KEYS)} (numpy.savez(path, x=array))"
                )
            with z.open(f"{key}.npy") as fh:
                got, fortran, dtype = _header(fh)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise InputsError(
            f"{f}: not a readable .npz archive ({first_line(e)}); save the arrays with numpy.savez"
        ) from None
    dims = ", ".join(map(str, shape))
    if dtype.hasobject:
        raise InputsError(f"{f}: array '{key}' holds Python objects; save a numeric array")
    pixels = (
        len(shape) == 3
        and shape[0] in (1, 3)
        and dtype == np.uint8
        and (len(got) == 3 or (len(got) == 4 and got[3] in (1, 3, 4)))
        and min(got[1:3], default=0) > 0
    )
    kind_ok = np.issubdtype(dtype, np.floating) == np.issubdtype(target, np.floating) and (
        np.issubdtype(dtype, np.number) or dtype == np.bool_
    )
    if not pixels and not (tuple(got[1:]) == tuple(shape) and len(got) >= 1 and kind_ok):
        kind = "float" if np.issubdtype(target, np.floating) else str(target)
        images = " or (N, H, W[, C]) uint8 images" if len(shape) == 3 else ""
        raise InputsError(
            f"{f}: array '{key}' is {dtype} of shape {tuple(got)}; the stages take "
            f"(N, {dims}) {kind}{images}"
        )
    return _Archive(key, tuple(got), dtype, bool(fortran), pixels)


def _chunks(f: Path, a: _Archive, rows: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """(first index, rows) of the archive's array, read ``rows`` at a time from the zip stream:
    an archive larger than memory still runs."""
    try:
        if a.fortran:  # not row-contiguous on disk: the whole array at once
            with np.load(f, allow_pickle=False) as npz:
                whole = npz[a.key]
            for start in range(0, len(whole), rows):
                yield start, whole[start : start + rows]
            return
        each = math.prod(a.shape[1:]) * a.dtype.itemsize
        with zipfile.ZipFile(f) as z, z.open(f"{a.key}.npy") as fh:
            _header(fh)
            for start in range(0, a.shape[0], rows):
                k = min(rows, a.shape[0] - start)
                buf = fh.read(k * each)
                if len(buf) != k * each:
                    raise InputsError(
                        f"{f}: array '{a.key}' ends after {start + len(buf) // max(each, 1)} of "
                        f"{a.shape[0]} items (a truncated archive); save it again"
                    )
                yield start, np.frombuffer(buf, a.dtype).reshape(k, *a.shape[1:])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as e:
        raise InputsError(
            f"{f}: the archive is damaged ({first_line(e)}); save the arrays again"
        ) from None


def _pixels(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One (H, W) or (H, W, C) uint8 image → (C, H, W) float, read as an image file is."""
    from PIL import Image

    if row.ndim == 3 and row.shape[2] == 1:
        row = row[:, :, 0]
    return pictures.image_array(Image.fromarray(np.ascontiguousarray(row)), *shape)


def _finite(x: np.ndarray) -> bool:
    return not np.issubdtype(x.dtype, np.floating) or bool(np.isfinite(x).all())


def _smaller(
    smallest: tuple[float, tuple[int, int], str] | None,
    size: tuple[int, int],
    shape: tuple[int, ...],
    item: str,
) -> tuple[float, tuple[int, int], str]:
    """The item shrunk most by its resize so far: (factor, size before, item)."""
    factor = min(shape[1] / size[0], shape[2] / size[1])
    return min(smallest, (factor, size, item)) if smallest else (factor, size, item)
