"""Feature distillation: MSE between named intermediate activations of teacher and student.

The student's activation goes through a learned projection to the teacher's width first: a 1×1
convolution for (B, C, H, W) maps (then pooled to the teacher's H×W when they differ), a linear
layer for (B, C) and (B, T, C). Activations are caught with forward hooks, so the models stay
as they are; the projections exist only during training.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from modelpress.errors import StepError
from modelpress.sources.models import first_tensor


def find_module(model: nn.Module, name: str, role: str, where: str) -> nn.Module:
    """``model``'s submodule ``name``; an unknown name lists the closest real ones."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.4)
    hint = f"close names: {', '.join(close)}" if close else f"e.g. {', '.join(names[:6])}"
    raise StepError(f"{where}: the {role} has no layer '{name}'; {hint}")


def parse_pairs(spec: list[str], where: str) -> list[tuple[str, str]]:
    """``["t_layer:s_layer", ...]`` → pairs; a malformed entry is a clear error."""
    pairs = []
    for item in spec:
        teacher, sep, student = item.partition(":")
        if not sep or not teacher or not student:
            raise StepError(
                f"{where}: feature_layers entry '{item}' is not TEACHER_LAYER:STUDENT_LAYER"
            )
        pairs.append((teacher.strip(), student.strip()))
    return pairs


def _projection(s: torch.Tensor, t: torch.Tensor, pair: tuple[str, str], where: str) -> nn.Module:
    if s.dim() == 4 and t.dim() == 4:
        return nn.Conv2d(s.shape[1], t.shape[1], kernel_size=1, bias=False)
    if s.dim() == t.dim() and s.dim() in (2, 3):
        return nn.Linear(s.shape[-1], t.shape[-1], bias=False)
    raise StepError(
        f"{where}: feature pair {pair[0]}:{pair[1]} has shapes {tuple(t.shape)} (teacher) and "
        f"{tuple(s.shape)} (student); pick layers whose outputs are both (B, C, H, W), (B, C) "
        "or (B, T, C)"
    )


class FeatureDistiller(nn.Module):
    """Hooks on paired layers plus one projection per pair; ``loss()`` after a forward of both."""

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        pairs: list[tuple[str, str]],
        example: list[torch.Tensor],  # a real batch, to learn each activation's shape
        weight: float,
        where: str = "distill",
    ) -> None:
        super().__init__()
        self.pairs, self.weight = pairs, weight
        self._caught: dict[str, torch.Tensor] = {}
        self._hooks = []
        for i, (t_name, s_name) in enumerate(pairs):
            for role, model, name in (("teacher", teacher, t_name), ("student", student, s_name)):
                module = find_module(model, name, role, where)
                self._hooks.append(module.register_forward_hook(self._catch(f"{role}{i}")))
        was_training = student.training
        student.eval()
        with torch.no_grad():
            teacher(*example)
            student(*example)
        student.train(was_training)
        self.projections = nn.ModuleList(
            _projection(self._caught[f"student{i}"], self._caught[f"teacher{i}"], pair, where)
            for i, pair in enumerate(pairs)
        )
        # (student, teacher) activation shapes per pair, as seen on the example batch
        self.shapes = [
            (tuple(self._caught[f"student{i}"].shape), tuple(self._caught[f"teacher{i}"].shape))
            for i in range(len(pairs))
        ]
        self._caught.clear()

    def _catch(self, key: str) -> Callable[[nn.Module, object, object], None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            self._caught[key] = first_tensor(output)

        return hook

    def project(self, i: int, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The student's activation ``s`` in the teacher's shape."""
        out = self.projections[i](s)
        if out.dim() == 4 and out.shape[-2:] != t.shape[-2:]:
            out = F.adaptive_avg_pool2d(out, t.shape[-2:])
        return out

    def loss(self) -> torch.Tensor:
        total = torch.zeros(())
        for i in range(len(self.pairs)):
            s, t = self._caught[f"student{i}"], self._caught[f"teacher{i}"]
            total = total + F.mse_loss(self.project(i, s, t), t.detach())
        return self.weight * total

    def remove(self) -> None:
        """Detach the hooks (after training)."""
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
