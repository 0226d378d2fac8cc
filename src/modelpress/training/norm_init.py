"""Normalization layers that start where a model cannot learn from, and the reset that fixes it.

transformers' EfficientNet (``EfficientNetPreTrainedModel._init_weights``) draws every
BatchNorm weight γ from N(0, 0.02), as it does a linear layer's: each of its ~50 BatchNorms then
scales its output by ~0.02, the signal at the pooled features is ~1e-29 and the loss stays at
ln(K) whatever the learning rate (measured here on digits: validation top-1 0.10 after 8
epochs). It also passes TensorFlow's BatchNorm momentum (0.99: keep 99 % of the running average)
to PyTorch, whose momentum is the share of the *new* batch, so its running statistics follow the
last batch only. Neither is the training loop's to fix silently; ``inspect_norms`` names them
before training and ``reset_norms`` (``--reset-norm``, ``reset_norm: true``) starts γ at 1, β at
0 and turns a TensorFlow momentum m into PyTorch's 1 - m.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)
NEAR_ZERO = 0.1  # mean |γ| below which a norm layer's output is mostly scaled away


@dataclass
class NormInit:
    """What a model's normalization layers start as."""

    layers: int  # normalization layers with a learnable weight γ
    near_zero: int  # of them starting with mean |γ| < NEAR_ZERO (γ exactly 0 excluded)
    mean_abs: float  # mean |γ| over those
    tf_momentum: int  # BatchNorm layers with momentum > 0.5 (TensorFlow's convention)
    origin: str  # the model's class, and its module when it is a library's

    @property
    def starves(self) -> bool:
        """Whether most norm layers scale the signal away: the model cannot learn as it is."""
        return self.near_zero >= 2 and self.near_zero * 2 >= self.layers

    def problems(self) -> list[str]:
        """One sentence per problem found, with what to do (empty when none)."""
        out = []
        if self.starves:
            out.append(
                f"{self.near_zero} of {self.layers} normalization layers of {self.origin} start "
                f"with weights near 0 (mean |γ| {self.mean_abs:.3g}): each scales the signal "
                "away and the model cannot learn as initialised; pass --reset-norm (recipe: "
                "reset_norm: true) to start them at γ=1, β=0"
            )
        if self.tf_momentum:
            out.append(
                f"{self.tf_momentum} BatchNorm layers of {self.origin} have momentum > 0.5, "
                "TensorFlow's convention (PyTorch's momentum is the new batch's share): their "
                "running statistics follow the last batch only; --reset-norm sets 1 - momentum"
            )
        return out


def _weighted(model: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in model.modules()
        if isinstance(m, _NORMS) and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]


def _origin(model: nn.Module) -> str:
    cls = type(model)
    library = cls.__module__.split(".")[0]
    return f"{cls.__name__} ({library})" if library not in ("__main__", "") else cls.__name__


def _near_zero(m: nn.Module) -> bool:
    w = m.weight.detach().abs()  # type: ignore[union-attr]
    return bool(w.max() > 0) and float(w.mean()) < NEAR_ZERO


def inspect_norms(model: nn.Module) -> NormInit:
    norms = _weighted(model)
    low = [m for m in norms if _near_zero(m)]
    mean_abs = (
        float(torch.cat([m.weight.detach().abs().flatten() for m in low]).mean()) if low else 0.0  # type: ignore[union-attr]
    )
    tf = sum(
        1
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.momentum or 0.0) > 0.5
    )
    return NormInit(len(norms), len(low), mean_abs, tf, _origin(model))


def reset_norms(model: nn.Module) -> NormInit:
    """γ=1, β=0 for the norm layers that start near zero; momentum m > 0.5 → 1 - m. Returns
    what was found before the reset."""
    found = inspect_norms(model)
    with torch.no_grad():
        for m in _weighted(model):
            if _near_zero(m):
                m.weight.fill_(1.0)  # type: ignore[union-attr, operator]
                if isinstance(getattr(m, "bias", None), torch.Tensor):
                    m.bias.zero_()  # type: ignore[union-attr, operator]
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.momentum or 0.0) > 0.5:
            m.momentum = 1.0 - m.momentum  # type: ignore[operator]
    return found
