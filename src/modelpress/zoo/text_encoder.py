"""A small transformer encoder over integer token ids, for sequence classification / embeddings.

Input (B, T) int64 token ids → token + learned position embeddings (B, T, D) → pre-norm encoder
layers (multi-head self-attention + GELU MLP) → mean pool over T → LayerNorm → Linear logits.
Attention is written out with Linear layers and matmuls (no fused kernels) so torch.export,
the ONNX exporter and the quantizers see ordinary MatMul/Softmax/LayerNorm ops.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from modelpress.errors import ModelSourceError
from modelpress.zoo._common import check_dropout, check_positive_int


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # each (B, T, D)
        # (B, T, D) -> (B, H, T, D/H)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)  # (B, H, T, T)
        att = self.drop(att.softmax(dim=-1))
        out = (att @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.proj(out)


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))  # pre-norm residuals: stable without warm-up tricks
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    def __init__(
        self,
        num_classes: int,
        vocab_size: int,
        dim: int,
        heads: int,
        layers: int,
        max_len: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Parameter(torch.zeros(1, max_len, dim))
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.positions, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.tokens(ids) + self.positions[:, :t]  # (B, T, D)
        x = self.layers(x)
        return self.head(self.norm(x.mean(dim=1)))  # (B, num_classes)


def text_encoder(
    num_classes: int = 10,
    in_channels: int = 1,
    vocab_size: int = 1000,
    dim: int = 64,
    heads: int = 4,
    layers: int = 2,
    max_len: int = 128,
    dropout: float = 0.1,
) -> TextEncoder:
    """Transformer encoder classifier over token ids. ``in_channels`` is accepted for the zoo's
    common signature and ignored (tokens have no channels)."""
    for name, value in (
        ("num_classes", num_classes),
        ("in_channels", in_channels),
        ("vocab_size", vocab_size),
        ("dim", dim),
        ("heads", heads),
        ("layers", layers),
        ("max_len", max_len),
    ):
        check_positive_int(name, value)
    check_dropout(dropout)
    if dim % heads:
        raise ModelSourceError(f"dim ({dim}) must be divisible by heads ({heads})")
    return TextEncoder(num_classes, vocab_size, dim, heads, layers, max_len, dropout)
