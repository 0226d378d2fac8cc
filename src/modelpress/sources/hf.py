"""``hf:PATH``: a local Hugging Face folder (``save_pretrained``, a sentence-transformers
folder) as a model source.

The architecture is the class its ``config.json`` names (``architectures``), one that
``transformers`` itself defines; the weights come from the folder; the image preprocessing
(size, mean, std) from its ``preprocessor_config.json`` when it has one. Loading never
downloads (offline, local files only) and never runs code from the folder: a config that maps
to the folder's own code (``auto_map``: ``trust_remote_code``) is refused in one line. The
model answers with one tensor (``HFOutputs``): its ``logits`` when it has a head, else the
pooled output, else the mean of the last hidden state over tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelpress.errors import ModelSourceError, first_line

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class HFOutputs(nn.Module):
    """A ``transformers`` model answering with one tensor: ``logits`` when it has a head; else
    as ``pool`` says: ``mean`` (of ``last_hidden_state`` over the tokens the attention mask
    keeps), ``cls`` (the first token), or ``auto`` (``pooler_output``, else the mean); then
    L2-normalised when ``normalize`` (a sentence-transformers folder's Normalize module)."""

    def __init__(self, model: nn.Module, pool: str = "auto", normalize: bool = False) -> None:
        super().__init__()
        self.model, self.pool, self.normalize = model, pool, normalize

    # named positional inputs, not *inputs: torch.export binds dynamic shapes to each by name
    def forward(
        self,
        input0: torch.Tensor,
        input1: torch.Tensor | None = None,
        input2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        inputs = [t for t in (input0, input1, input2) if t is not None]
        out = self.model(*inputs)
        logits = getattr(out, "logits", None)
        if isinstance(logits, torch.Tensor):
            return logits
        pooled = getattr(out, "pooler_output", None)
        hidden = getattr(out, "last_hidden_state", None)
        if not isinstance(hidden, torch.Tensor):
            hidden = out[0] if isinstance(out, tuple | list) else out
        if self.pool == "auto" and isinstance(pooled, torch.Tensor):
            y = pooled.flatten(1)
        elif hidden.ndim != 3:
            y = hidden
        elif self.pool == "cls":
            y = hidden[:, 0]
        elif len(inputs) > 1 and inputs[1].shape == hidden.shape[:2]:
            mask = inputs[1].to(hidden.dtype).unsqueeze(-1)  # the attention mask
            y = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        else:
            y = hidden.mean(1)
        return nn.functional.normalize(y, dim=-1) if self.normalize else y


def sentence_transformers_head(path: Path) -> dict[str, Any] | None:
    """A sentence-transformers folder's pooling and normalisation (modules.json, 1_Pooling),
    read as data; None for a plain transformers folder."""
    try:
        modules = json.loads((path / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(modules, list):
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
    pool = "mean"
    for m in modules:
        if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling"):
            try:
                cfg = json.loads((path / str(m.get("path", "")) / "config.json").read_text())
            except (OSError, ValueError):
                cfg = {}
            pool = "cls" if cfg.get("pooling_mode_cls_token") else "mean"
    return {"pool": pool, "normalize": "Normalize" in kinds}


def _folder(source: str) -> Path:
    path = Path(source.removeprefix("hf:"))
    if not (path / "config.json").is_file():
        raise ModelSourceError(
            f"{source}: no config.json in {path}; hf:PATH is a folder save_pretrained wrote"
        )
    return path


def _config(source: str, path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelSourceError(f"{source}: config.json is not readable JSON ({e})") from None
    if not isinstance(config, dict):
        raise ModelSourceError(f"{source}: config.json is not a mapping")
    if config.get("auto_map"):
        raise ModelSourceError(
            f"{source}: its config.json maps the model to code in the folder (auto_map: "
            "trust_remote_code); modelpress never runs a model folder's code: use a model "
            "transformers defines, or hand the model over as file.py:factory"
        )
    return config


def preprocess(path: Path) -> dict[str, Any] | None:
    """The image preprocessing ``preprocessor_config.json`` says: ``size`` (H, W) after
    resizing and cropping, ``mean`` and ``std`` (None: the folder has no image processor)."""
    file = path / "preprocessor_config.json"
    if not file.is_file():
        return None
    try:
        p = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    out: dict[str, Any] = {"from": file.name}
    size = p.get("crop_size") if p.get("do_center_crop") else p.get("size")
    short = p.get("size", {}).get("shortest_edge") if isinstance(p.get("size"), dict) else None
    if p.get("do_center_crop") and isinstance(short, int):
        out["resize"] = short  # the shorter side resized to this, then the centre cropped
    if isinstance(size, int):
        out["size"] = [size, size]
    elif isinstance(size, dict):
        h = size.get("height", size.get("shortest_edge"))
        w = size.get("width", size.get("shortest_edge"))
        if isinstance(h, int) and isinstance(w, int):
            out["size"] = [h, w]
    if p.get("do_normalize", True) and p.get("image_mean") and p.get("image_std"):
        out["mean"], out["std"] = list(p["image_mean"]), list(p["image_std"])
    return out


def inspect(source: str) -> dict[str, Any]:
    """What the folder says before anything is built: architecture, model type, image input
    shape (channels, H, W) when it is a vision model, preprocessing."""
    path = _folder(source)
    config = _config(source, path)
    if not any((path / w).is_file() for w in WEIGHTS):
        raise ModelSourceError(
            f"{source}: no weights file in {path} ({', '.join(WEIGHTS)}); save_pretrained "
            "writes model.safetensors beside config.json"
        )
    archs = config.get("architectures") or []
    pre = preprocess(path)
    channels = config.get("num_channels")
    size = (pre or {}).get("size") or (
        [config["image_size"]] * 2 if isinstance(config.get("image_size"), int) else None
    )
    shape = (int(channels or 3), *size) if size and (channels or pre) else None
    return {
        "architecture": archs[0] if archs and isinstance(archs[0], str) else None,
        "model_type": config.get("model_type"),
        "input_shape": shape,
        "preprocess": pre,
        "sentence_transformers": sentence_transformers_head(path),
        "tokenizer": any((path / f).is_file() for f in ("tokenizer.json", "vocab.txt")),
    }


def build(source: str, said: dict[str, Any]) -> nn.Module:
    """The model, its weights read from the folder, offline; wrapped in ``HFOutputs``."""
    from modelpress.extras import require

    os.environ["HF_HUB_OFFLINE"] = "1"  # never download, whatever the folder says
    transformers = require("transformers", "hf", "an hf: model")
    path = _folder(source)
    architecture = said.get("architecture")
    cls = getattr(transformers, architecture, None) if architecture else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        cls = transformers.AutoModel
    try:
        model = cls.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as e:
        raise ModelSourceError(
            f"{source}: transformers could not load it ({first_line(e)})"
        ) from None
    head = said.get("sentence_transformers") or {}
    return HFOutputs(model.eval(), head.get("pool", "auto"), bool(head.get("normalize")))
