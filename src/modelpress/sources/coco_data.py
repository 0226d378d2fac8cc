"""``coco:ANN.json[:IMAGES]``: COCO instances read, checked field by field, and split.

Each annotation's ``bbox`` (x, y, w, h in pixels) is normalised to its image; crowd regions,
unknown categories or images and unusable boxes are skipped and counted; a box mostly outside
its image is dropped, one a little past its edge clipped. Images load through the detection
loader (``detection_data._load_images``: letterboxed into the input shape)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from modelpress.errors import DataSourceError, first_line
from modelpress.sources.data import Split
from modelpress.sources.detection_data import _load_images


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_id(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v != "")


_COCO_FIELDS: dict[str, dict[str, tuple[Any, str]]] = {
    # section: field → (check, what it must be)
    "categories": {"id": (_is_id, "an integer id")},
    "images": {
        "id": (_is_id, "an integer id"),
        "file_name": (lambda v: isinstance(v, str) and v != "", "a file name"),
        "width": (lambda v: _is_number(v) and v > 0, "a number of pixels above 0, e.g. 640"),
        "height": (lambda v: _is_number(v) and v > 0, "a number of pixels above 0, e.g. 480"),
    },
}
_COCO_NEEDS = {
    "categories": "every category needs an id (and a name)",
    "images": "every image needs id, file_name, width and height (pixels)",
    "annotations": "every annotation is an object with image_id, category_id and bbox",
}


def _spelled_value(v: Any) -> str:
    kind = {str: "a string", bool: "a boolean", list: "a list", dict: "an object"}.get(type(v))
    shown = json.dumps(v)[:40]
    return f"{shown} ({kind})" if kind else shown


def _check_coco(doc: dict[str, Any], where: str) -> None:
    """Every category, image and annotation checked before any image is read: the first bad
    entry named (section, index, field), with how many more share its fault."""
    for section in ("categories", "images", "annotations"):
        faults: list[str] = []
        seen: dict[Any, int] = {}
        for i, entry in enumerate(doc[section]):
            at = f"{section}[{i}]"
            if not isinstance(entry, dict):
                faults.append(f"{at} is {_spelled_value(entry)}, not an object")
                continue
            for key, (ok, what) in _COCO_FIELDS.get(section, {}).items():
                if key not in entry:
                    faults.append(f"{at} has no '{key}'")
                elif not ok(entry[key]):
                    faults.append(f"{at}.{key} is {_spelled_value(entry[key])}; it must be {what}")
            ident = entry.get("id")
            if section != "annotations" and _is_id(ident):
                if ident in seen:
                    faults.append(f"{at}.id {ident!r} is also the id of {section}[{seen[ident]}]")
                seen.setdefault(ident, i)
        if faults:
            more = f" (and {len(faults) - 1} more faults there)" if len(faults) > 1 else ""
            raise DataSourceError(
                f"{where}: {faults[0]}{more}; {_COCO_NEEDS[section]}; fix the annotation file"
            )


# Past the image's edge by this many pixels or less is rounding, clipped without a word.
EDGE_SLACK_PX = 1.0


class _CocoCounts:
    """Why annotations were left out, and the boxes clipped to or dropped outside their image
    (the first of each kind named, so the user can find it)."""

    REASONS: ClassVar[dict[str, str]] = {
        "crowd": "crowd regions (iscrowd)",
        "category": "with a category_id that no category has",
        "image": "with an image_id that no image has",
        "bbox": "without a usable bbox (4 finite numbers x, y, w, h with w, h > 0)",
    }

    def __init__(self) -> None:
        self.skipped = dict.fromkeys(self.REASONS, 0)
        self.outside: list[str] = []  # mostly outside their image: dropped
        self.clipped: list[str] = []  # partly outside: clipped to the image

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def why(self) -> str:
        parts = [f"{n} {self.REASONS[r]}" for r, n in self.skipped.items() if n]
        if self.outside:
            parts.append(f"{len(self.outside)} lying mostly outside their image")
        return ", ".join(parts)

    def warnings(self, where: str, total: int) -> list[str]:
        out = []
        skipped = sum(self.skipped.values())
        if skipped:
            out.append(
                f"{where}: {skipped} of {total} annotations skipped: "
                + ", ".join(f"{n} {self.REASONS[r]}" for r, n in self.skipped.items() if n)
            )
        if self.outside:
            out.append(
                f"{where}: {len(self.outside)} boxes lie mostly outside their image (under half "
                f"their area inside; first: {self.outside[0]}): dropped, not clipped (clipped, "
                "each would become a box along the image's edge that no one drew; pycocotools "
                "would score it as annotated, a miss no prediction inside the image can match); "
                "fix their bbox if they are mistakes"
            )
        if self.clipped:
            out.append(
                f"{where}: {len(self.clipped)} boxes extend more than {EDGE_SLACK_PX:g} pixel "
                f"past their image's edge (first: {self.clipped[0]}); clipped to the image, "
                "most of each box lying inside"
            )
        return out


def _image_box(a: dict[str, Any], image: dict[str, Any], counts: _CocoCounts) -> list[float] | None:
    """The annotation's box as x1, y1, x2, y2 normalised to its image; a box mostly outside
    the image is None (counted), one a little past its edge is clipped (counted)."""
    x, y, bw, bh = (float(v) for v in a["bbox"])
    w0, h0 = float(image["width"]), float(image["height"])
    ix = min(x + bw, w0) - max(x, 0.0)
    iy = min(y + bh, h0) - max(y, 0.0)
    inside = max(ix, 0.0) * max(iy, 0.0)
    named = (
        f"annotation {a.get('id', '?')} on {image['file_name']}, bbox {a['bbox']} in a "
        f"{w0:g}×{h0:g} image"
    )
    if inside < 0.5 * bw * bh:
        counts.outside.append(named)
        return None
    slack = EDGE_SLACK_PX
    if x < -slack or y < -slack or x + bw > w0 + slack or y + bh > h0 + slack:
        counts.clipped.append(named)
    x1, y1 = max(x, 0.0) / w0, max(y, 0.0) / h0
    x2, y2 = min(x + bw, w0) / w0, min(y + bh, h0) / h0
    return [x1, y1, x2, y2]


def coco(
    arg: str,
    shape: tuple[int, int, int],
    seed: int,
    splits: tuple[float, float, float],
    warned: list[str],
) -> tuple[Split, Split, Split, list[str]]:
    ann_path, _, images_dir = arg.partition(":")
    path = Path(ann_path)
    where = f"coco:{path}"
    if not path.is_file():
        raise DataSourceError(f"{where}: annotation file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise DataSourceError(f"{where}: not readable JSON ({first_line(e)})") from None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise DataSourceError(
            f"{where}: a COCO file holds lists 'images', 'annotations' and 'categories'"
        )
    _check_coco(doc, where)
    # category ids in order (integers first, as COCO numbers them), mapped to 0 … nc-1
    cats = sorted(doc["categories"], key=lambda c: (isinstance(c["id"], str), c["id"]))
    index = {c["id"]: i for i, c in enumerate(cats)}
    names = [str(c.get("name", c["id"])) for c in cats]
    base = Path(images_dir) if images_dir else path.parent
    if not images_dir and not any((base / im["file_name"]).is_file() for im in doc["images"][:20]):
        base = path.parent / "images"
    per_image: dict[Any, list[list[float]]] = {im["id"]: [] for im in doc["images"]}
    images = {im["id"]: im for im in doc["images"]}
    counts = _CocoCounts()
    for a in doc["annotations"]:
        image_id, category = a.get("image_id"), a.get("category_id")
        if a.get("iscrowd"):
            counts.skip("crowd")
        elif not _is_id(category) or category not in index:
            counts.skip("category")
        elif not _is_id(image_id) or image_id not in images:
            counts.skip("image")
        elif not _pixel_box(a.get("bbox")):
            counts.skip("bbox")
        elif (box := _image_box(a, images[image_id], counts)) is not None:
            per_image[image_id].append([index[category], *box])
    total = len(doc["annotations"])
    warned.extend(counts.warnings(where, total))
    if not any(per_image.values()):
        why = (
            f"none of its {total} annotations is usable ({counts.why()})"
            if total
            else ("it holds no annotations")
        )
        raise DataSourceError(
            f"{where}: no ground-truth box to score: {why}; mAP over 0 boxes means nothing, so "
            "fix the annotations (category_id from categories, image_id from images, bbox "
            "[x, y, w, h] in pixels inside the image)"
        )
    ids = list(per_image)
    files = [base / im["file_name"] for im in doc["images"]]
    labels = [np.asarray(per_image[i], np.float32).reshape(-1, 5) for i in ids]
    whole = _load_images(files, labels, shape, where, base)
    n = len(whole)
    if n < 3:
        raise DataSourceError(f"{where}: only {n} images; modelpress needs 3 at least to split")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * splits[2]))
    n_cal = max(1, round(n * splits[1])) if splits[1] > 0 else 0
    val, cal, fit = order[:n_val], order[n_val : n_val + n_cal], order[n_val + n_cal :]
    return whole.take(np.sort(fit)), whole.take(np.sort(cal)), whole.take(np.sort(val)), names


def _pixel_box(box: Any) -> bool:
    """A usable COCO ``bbox``: four finite numbers x, y, w, h with w and h above 0."""
    return (
        isinstance(box, list)
        and len(box) == 4
        and all(_is_number(v) for v in box)
        and box[2] > 0
        and box[3] > 0
    )
