"""A certified cascade on builtin:digits-manipulated-subtle: a fast INT8 filter before a precise
model.

    python benchmarks/bench_cascade.py [--epochs 10] [--fresh]

Trains (cached under runs/bench/) a small fast model (zoo:dscnn ×0.5) and a precise one
(zoo:resnet_tiny) on builtin:digits-manipulated-subtle at 32×32 (splices under nearly the same
light: the fast model misses some that the precise one finds), exports the fast one to INT8 ONNX and
the precise one to FP32 ONNX with modelpress, builds the cascade (leakage ≤ 5 % certified at
95 %) and measures it beside the precise model alone, both in ONNX Runtime. PASS/FAIL:
  - leakage on validation ≤ the certified bound;
  - the certificate holds on 20 reseeded splits of the held-out items in at least 19 (the
    thresholds chosen again on each split's calibration half, the leakage counted on the other);
  - deferred share ≤ 40 %; cascade AUC within 0.01 of the precise model alone;
  - cascade throughput ≥ 2× the precise model alone (whole validation split, batches of 256).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from modelpress.core.recipe import build_recipe
from modelpress.deploy.cascade import build, open_stage
from modelpress.engine import pipeline
from modelpress.training import TrainConfig, train_and_save

DATA = "builtin:digits-manipulated-subtle"
SHAPE = "1,1,32,32"
ROOT = Path("runs/bench/cascade-subtle")
MODELS = {"fast": ("zoo:dscnn", {"width_mult": 0.5}), "precise": ("zoo:resnet_tiny", {})}


def _trained(name: str, epochs: int, fresh: bool) -> Path:
    path = ROOT / f"{name}.pt"
    if path.is_file() and not fresh:
        return path
    model, kwargs = MODELS[name]
    recipe = build_recipe(
        {"model": model, "model_kwargs": kwargs, "data": DATA, "input_shape": SHAPE}
    )
    train_and_save(recipe, TrainConfig(epochs=epochs, lr=3e-3, seed=0), path)
    return path


def _exported(checkpoint: Path, precision: str, fresh: bool) -> Path:
    out = ROOT / f"export-{checkpoint.stem}-{precision}"
    step = {"type": "export", "format": "onnx", "precision": precision}
    recipe = build_recipe(
        {
            "model": str(checkpoint.resolve()),
            "data": DATA,
            "input_shape": SHAPE,
            "evaluate": {"repeats": 5},
            "steps": [step],
        }
    )
    record = pipeline.run(recipe, out=out, resume=not fresh, force=fresh)
    return out / record["artifacts"][-1]["path"]


def _reseeded(fast: Path, seeds: int, max_leakage: float, confidence: float) -> list[dict]:
    """The held-out items (calibration ∪ validation of the training split) split in halves
    ``seeds`` times: thresholds certified on one half, leakage counted on the other."""
    from modelpress.deploy.calibration import calibrated_probs, fit_temperature
    from modelpress.deploy.certify import CertificationError, choose_thresholds
    from modelpress.tasks import find_task

    runtime, data = open_stage(str(fast), DATA, None, SHAPE)
    pairs = zip(data.calibration.inputs, data.validation.inputs, strict=True)
    x = [np.concatenate([a, b]) for a, b in pairs]
    y = np.concatenate([data.calibration.labels, data.validation.labels])
    z = find_task("binary").cascade_scores(runtime.predict_all(x, 256))  # the log-odds
    runtime.close()
    out = []
    for seed in range(1, seeds + 1):
        order = np.random.default_rng(seed).permutation(len(y))
        cal, val = order[: len(y) // 2], order[len(y) // 2 :]
        t = fit_temperature(z[cal], y[cal]).temperature
        try:
            cert = choose_thresholds(
                calibrated_probs(z[cal], t), y[cal], max_leakage=max_leakage, confidence=confidence
            )
        except CertificationError as e:
            out.append({"seed": seed, "error": str(e)})
            continue
        p = calibrated_probs(z[val], t)
        positives = y[val] == 1
        leaked = int((positives & (p < cert.low)).sum())
        out.append(
            {
                "seed": seed,
                "bound": cert.upper_bound,
                "leakage": leaked / int(positives.sum()),
                "holds": leaked / int(positives.sum()) <= max_leakage,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-leakage", type=float, default=0.05)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    console = Console(width=200)
    ROOT.mkdir(parents=True, exist_ok=True)
    fast = _exported(_trained("fast", args.epochs, args.fresh), "int8", args.fresh)
    precise = _exported(_trained("precise", args.epochs, args.fresh), "fp32", args.fresh)
    cascade, figures = build(
        [str(fast), str(precise)],
        DATA,
        ROOT / "bundle",
        max_leakage=args.max_leakage,
        confidence=args.confidence,
        input_shape=SHAPE,
    )
    cascade.close()
    variants = {}
    for label, kw in (
        ("+ meta-model (logistic)", {"meta": "logistic"}),
        ("+ buckets (quality:3)", {"buckets": "quality:3"}),
    ):
        other, variants[label] = build(
            [str(fast), str(precise)],
            DATA,
            ROOT / f"bundle-{kw.get('meta') or 'buckets'}",
            max_leakage=args.max_leakage,
            confidence=args.confidence,
            input_shape=SHAPE,
            **kw,
        )
        other.close()
    (ROOT / "figures.json").write_text(json.dumps({"cascade": figures, **variants}, indent=2))
    c, alone = figures["cascade"], figures["stages"][-1]["alone"]
    cert = cascade.stages[0].certificate or {}
    table = Table(title="Cascade vs the precise model alone (validation split, ONNX Runtime)")
    for col in ("", "AUC", "F1", "leakage", "deferred", "ms/item", "items/s"):
        table.add_column(col)
    table.add_row(
        "cascade",
        f"{c['auc']:.4f}",
        f"{c['f1']:.4f}",
        f"{100 * c['leakage']:.2f} %",
        f"{100 * c['deferred']:.1f} %",
        f"{c['ms_per_item']:.4f}",
        f"{c['throughput_per_s']:.0f}",
    )
    for label, f in variants.items():
        v = f["cascade"]
        table.add_row(
            f"cascade {label}",
            f"{v['auc']:.4f}",
            f"{v['f1']:.4f}",
            f"{100 * v['leakage']:.2f} %",
            f"{100 * v['deferred']:.1f} %",
            f"{v['ms_per_item']:.4f}",
            f"{v['throughput_per_s']:.0f}",
        )
    for st in figures["stages"]:
        a = st["alone"]
        table.add_row(
            f"{st['name']} alone",
            f"{a['auc']:.4f}",
            f"{a['f1']:.4f}",
            "",
            "",
            f"{a['ms_per_item']:.4f}",
            f"{a['throughput_per_s']:.0f}",
        )
    console.print(table)
    console.print(
        f"stage 0 thresholds: low {cert.get('low')}, high {cert.get('high')}; "
        f"{cert.get('passed')} of {cert.get('positives')} calibration positives let through; "
        f"certified bound {100 * cert.get('upper_bound', 0):.2f} %"
    )
    seeds = _reseeded(fast, 20, args.max_leakage, args.confidence)
    holds = sum(1 for s in seeds if s.get("holds"))
    for s in seeds:
        console.print(
            f"  split {s['seed']:2d}: "
            + (
                s["error"]
                if "error" in s
                else f"bound {100 * s['bound']:.2f} %, held-out leakage "
                f"{100 * s['leakage']:.2f} % {'ok' if s['holds'] else 'OVER'}"
            )
        )
    checks = [
        (
            "leakage on validation ≤ the certified bound",
            c["leakage"] <= cert["upper_bound"],
            f"{100 * c['leakage']:.2f} % vs {100 * cert['upper_bound']:.2f} %",
        ),
        ("certificate holds on ≥ 19 of 20 reseeded splits", holds >= 19, f"{holds} of 20"),
        ("deferred ≤ 40 %", c["deferred"] <= 0.40, f"{100 * c['deferred']:.1f} %"),
        (
            "AUC within 0.01 of the precise model",
            abs(c["auc"] - alone["auc"]) <= 0.01,
            f"{c['auc']:.4f} vs {alone['auc']:.4f}",
        ),
        (
            "throughput ≥ 2× the precise model alone",
            c["throughput_per_s"] >= 2 * alone["throughput_per_s"],
            f"{c['throughput_per_s'] / alone['throughput_per_s']:.2f}×",
        ),
    ]
    for name, ok, value in checks:
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")


if __name__ == "__main__":
    main()
