"""Text data: ``text:FILE`` (one example a line, no labels), ``jsonl:FILE`` (one JSON object a
line) and ``csv:FILE`` (a header row), with ``text`` and ``label`` fields (names settable).

Texts are tokenised with the model's own tokenizer (an ``hf:`` folder's, or ``data.tokenizer``)
to ``input_ids`` and ``attention_mask``, int64, padded to the longest example up to
``max_length`` (truncated past it): the integer inputs stay integers through every export.
Labels are integers as given, or names (sorted, numbered from 0). The tokenizer is read offline
and never runs the folder's code.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.errors import DataSourceError, first_line

KINDS = ("text", "jsonl", "csv")
MAX_LENGTH = 128


def _rows(kind: str, path: Path, where: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataSourceError(f"{where}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataSourceError(f"{where}: not readable UTF-8 text ({e})") from None
    if kind == "text":
        return [{"text": line.strip()} for line in text.splitlines() if line.strip()]
    if kind == "csv":
        return list(csv.DictReader(text.splitlines()))
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise DataSourceError(f"{where}:{i}: not a JSON object ({e})") from None
        if not isinstance(row, dict):
            raise DataSourceError(f"{where}:{i}: not a JSON object")
        rows.append(row)
    return rows


def _labels(values: list[Any], where: str, column: str) -> tuple[np.ndarray, list[str] | None]:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64), None
    if all(isinstance(v, str) and v.strip().lstrip("-").isdigit() for v in values):
        return np.asarray([int(v) for v in values], dtype=np.int64), None
    if all(isinstance(v, str) and v.strip() for v in values):
        names = sorted(set(values))
        index = {n: i for i, n in enumerate(names)}
        return np.asarray([index[v] for v in values], dtype=np.int64), names
    raise DataSourceError(
        f"{where}: the '{column}' values are neither all integers nor all names; give each "
        "example an integer class or a class name"
    )


def tokenizer_for(folder: str, where: str) -> Any:
    """The tokenizer saved in ``folder`` (offline; a tokenizer that maps to the folder's own
    code is refused)."""
    from modelpress.extras import require

    path = Path(folder.removeprefix("hf:"))
    config = path / "tokenizer_config.json"
    if config.is_file():
        try:
            said = json.loads(config.read_text())
        except ValueError:
            said = {}
        if isinstance(said, dict) and said.get("auto_map"):
            raise DataSourceError(
                f"{where}: the tokenizer in {path} maps to code in its folder (auto_map); "
                "modelpress never runs a folder's code"
            )
    os.environ["HF_HUB_OFFLINE"] = "1"
    transformers = require("transformers", "hf", "text data")
    try:
        return transformers.AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False
        )
    except Exception as e:
        raise DataSourceError(
            f"{where}: no tokenizer could be read from {path} ({first_line(e)})"
        ) from None


def load_text(
    source: str,
    tokenizer: str | None,
    max_length: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> tuple[list[np.ndarray], list[str], np.ndarray | None, list[str] | None]:
    """(inputs, input names, labels or None, class names or None) of a text source."""
    kind, _, arg = source.partition(":")
    text_key, label_key = text_column or "text", label_column or "label"
    rows = _rows(kind, Path(arg), source)
    if not rows:
        raise DataSourceError(f"{source}: no examples")
    missing = [i for i, r in enumerate(rows, 1) if not isinstance(r.get(text_key), str)]
    if missing:
        raise DataSourceError(
            f"{source}: example {missing[0]} has no '{text_key}' text ({len(missing)} of "
            f"{len(rows)}); name the column with data.text_column"
        )
    labelled = [label_key in r for r in rows]
    if any(labelled) and not all(labelled):
        first = labelled.index(False) + 1
        raise DataSourceError(
            f"{source}: example {first} has no '{label_key}' while others do; label every "
            "example or none"
        )
    if tokenizer is None:
        raise DataSourceError(
            f"{source}: text needs the model's tokenizer; give an hf:PATH model (its folder's "
            "tokenizer) or data.tokenizer: PATH (a folder with tokenizer.json or vocab.txt)"
        )
    tok = tokenizer_for(tokenizer, source)
    texts = [r[text_key] for r in rows]
    enc = tok(
        texts,
        padding="longest",
        truncation=True,
        max_length=max_length or MAX_LENGTH,
        return_tensors="np",
    )
    inputs = [enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)]
    y, names = (None, None)
    if all(labelled):
        y, names = _labels([r[label_key] for r in rows], source, label_key)
    return inputs, ["input_ids", "attention_mask"], y, names
