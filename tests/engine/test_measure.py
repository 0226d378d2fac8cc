from pathlib import Path

import torch

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine.context import build_context
from modelpress.engine.measure import analyze


def test_nan_outputs_are_flagged_not_averaged(trained_checkpoint: Path) -> None:
    ctx, base = build_context(build_recipe(tiny_recipe(str(trained_checkpoint))))
    parent_entry, parent_out = analyze(base, ctx)
    good = base.module

    class SometimesNaN(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = good(x)
            bad = (x.flatten(1).sum(1) > x.flatten(1).sum(1).median()).unsqueeze(1)
            return torch.where(bad, torch.full_like(out, float("nan")), out)

    base.module, base.name, base.parents = SometimesNaN(), "broken", ["baseline"]
    entry, _ = analyze(base, ctx, parent_outputs=parent_out, parent_entry=parent_entry)
    assert entry["status"] == "collapsed"  # never ok, never recommended
    assert entry["verification"]["nonfinite_samples"] > 0
    assert entry["metrics"]["nonfinite_samples"] == entry["verification"]["nonfinite_samples"]
    assert 0.0 <= entry["metrics"]["top1"] <= 1.0  # computed on the finite rows only
    assert any("non-finite" in n for n in entry["notes"])
    n = entry["metrics"]["nonfinite_samples"]
    assert any(x.startswith(f"collapsed: {n} of 360 validation samples") for x in entry["notes"])
