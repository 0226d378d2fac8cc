"""YOLO-nano: a small anchor-free detector with a decoupled head over strides 8, 16 and 32.

Backbone of strided 3×3 convolutions (Conv-BN-act), a top-down neck (nearest upsample + add,
as an FPN), and per level a decoupled head: a class branch ending in a 1×1 conv of ``nc``
logits and a box branch ending in a 1×1 conv of 4 distances (left, top, right, bottom from the
cell centre, ``softplus · stride``), as YOLOv8's head without its distribution-focal bins.

Two output layouts (``layout``):
    "modelpress"  boxes (B, N, 4) xyxy normalised to [0, 1], scores (B, N, nc) after sigmoid
    "yolov8"      one (B, 4 + nc, N): cx, cy, w, h in input pixels, then the sigmoid scores
N = Σ (H/s)·(W/s) over the three strides. Everything after the head's last convolutions (the
decode tail: softplus, anchor arithmetic, sigmoid, concat) is what INT8 keeps in float.

``act="relu"`` by default: ReLU fuses into int8 convolutions in every runtime here, SiLU does
not (its sigmoid·x runs as two float ops between quantized convolutions).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modelpress.errors import ModelSourceError
from modelpress.zoo._common import check_positive_int, check_width_mult

STRIDES = (8, 16, 32)


def _act(kind: str) -> nn.Module:
    return nn.SiLU(inplace=True) if kind == "silu" else nn.ReLU(inplace=True)


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, act: str = "relu") -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), _act(act)
        )


class Head(nn.Module):
    """One level's decoupled head: (B, C, H, W) → box distances (B, 4, H, W) and class
    logits (B, nc, H, W)."""

    def __init__(self, c: int, nc: int, act: str) -> None:
        super().__init__()
        self.box = nn.Sequential(ConvBN(c, c, act=act), nn.Conv2d(c, 4, 1))
        self.cls = nn.Sequential(ConvBN(c, c, act=act), nn.Conv2d(c, nc, 1))
        nn.init.constant_(self.cls[-1].bias, -math.log((1 - 0.01) / 0.01))  # prior score 0.01
        nn.init.zeros_(self.box[-1].weight)
        nn.init.zeros_(self.box[-1].bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.box(x), self.cls(x)


def _grid(h: int, w: int, stride: int) -> torch.Tensor:
    """(2, H·W) cell centres in input pixels, x then y, as a constant: exported graphs hold it
    as data, not as arange arithmetic (which LiteRT's int8 conversion mangles)."""
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    centres = (np.stack([xs.ravel(), ys.ravel()]).astype(np.float32) + 0.5) * stride
    return torch.from_numpy(centres)


class YoloNano(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        act: Literal["relu", "silu"] = "relu",
        layout: Literal["modelpress", "yolov8"] = "modelpress",
    ) -> None:
        super().__init__()
        c = [max(8, round(v * width / 8) * 8) for v in (16, 32, 64, 96, 128)]
        self.layout, self.num_classes = layout, num_classes
        self.stem = nn.Sequential(
            ConvBN(in_channels, c[0], s=2, act=act), ConvBN(c[0], c[1], s=2, act=act)
        )  # stride 4
        self.stage3 = nn.Sequential(ConvBN(c[1], c[2], s=2, act=act), ConvBN(c[2], c[2], act=act))
        self.stage4 = nn.Sequential(ConvBN(c[2], c[3], s=2, act=act), ConvBN(c[3], c[3], act=act))
        self.stage5 = nn.Sequential(ConvBN(c[3], c[4], s=2, act=act), ConvBN(c[4], c[4], act=act))
        n = c[2]  # the neck's width
        self.lateral = nn.ModuleList(ConvBN(ci, n, k=1, act=act) for ci in (c[2], c[3], c[4]))
        self.smooth = nn.ModuleList(ConvBN(n, n, act=act) for _ in range(2))
        self.heads = nn.ModuleList(Head(n, num_classes, act) for _ in STRIDES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, w = x.shape[-2:]
        p3 = self.stage3(self.stem(x))
        p4 = self.stage4(p3)
        p5 = self.stage5(p4)
        n5 = self.lateral[2](p5)
        n4 = self.smooth[1](self.lateral[1](p4) + F.interpolate(n5, scale_factor=2.0))
        n3 = self.smooth[0](self.lateral[0](p3) + F.interpolate(n4, scale_factor=2.0))
        dists, logits, centres, strides = [], [], [], []
        for feat, head, s in zip((n3, n4, n5), self.heads, STRIDES, strict=True):
            d, c = head(feat)  # (B, 4, Hs, Ws), (B, nc, Hs, Ws)
            hs, ws = feat.shape[-2:]
            dists.append(d.flatten(2))
            logits.append(c.flatten(2))
            centres.append(_grid(int(hs), int(ws), s))  # (2, Hs·Ws)
            strides.append(torch.full((hs * ws,), float(s)))
        # the decode tail: kept in float by INT8
        dist = F.softplus(torch.cat(dists, 2)) * torch.cat(strides)  # (B, 4, N) pixels
        centre = torch.cat(centres, 1)  # (2, N)
        lt, rb = centre - dist[:, :2], centre + dist[:, 2:]  # (B, 2, N) each
        scores = torch.cat(logits, 2).sigmoid()  # (B, nc, N)
        if self.layout == "yolov8":
            return torch.cat([(lt + rb) / 2, rb - lt, scores], 1)  # (B, 4 + nc, N)
        scale = torch.tensor([w, h], dtype=x.dtype)[:, None]
        boxes = torch.cat([lt / scale, rb / scale], 1)  # (B, 4, N) normalised xyxy
        return boxes.transpose(1, 2), scores.transpose(1, 2)


def yolo_nano(
    num_classes: int = 10,
    in_channels: int = 3,
    width_mult: float = 1.0,
    act: Literal["relu", "silu"] = "relu",
    layout: Literal["modelpress", "yolov8"] = "modelpress",
) -> YoloNano:
    """YOLO-nano with widths 16-128 × ``width_mult``; inputs need sides divisible by 32."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    width_mult = check_width_mult(width_mult)
    if act not in ("relu", "silu"):
        raise ModelSourceError(f"act must be 'relu' or 'silu', got {act!r}")
    if layout not in ("modelpress", "yolov8"):
        raise ModelSourceError(f"layout must be 'modelpress' or 'yolov8', got {layout!r}")
    return YoloNano(num_classes, in_channels, width_mult, act, layout)
