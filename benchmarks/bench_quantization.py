"""INT8 on CPU: modelpress's automatic choice next to the peer paths, measured in one run.

    python benchmarks/bench_quantization.py [--checkpoint runs/bench/resnet18-digits64.pt]

The model is ``zoo:resnet18`` trained on the built-in digits at 64×64×3 (trained on first use
and cached). modelpress runs its quantization recipe (ONNX fp32 and int8 with the measured
activation type, PT2E int8 → ONNX, OpenVINO int8 when the extra is installed, fp16) and picks
its recommendation. The peers are built here with raw library calls: ONNX Runtime
``quantize_static`` with its defaults, and NNCF PTQ → OpenVINO. Every artifact is then timed
again in interleaved rounds with the same loop (batch 1, ``--threads``) so the ratios compare
like with like, and the issue's acceptance checks are printed as PASS/FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from modelpress.core import pipeline
from modelpress.core.artifact import Artifact
from modelpress.core.context import build_context
from modelpress.core.recipe import build_recipe
from modelpress.evaluate.benchmark import time_callable
from modelpress.evaluate.compare import compare_outputs
from modelpress.runtimes import runtime_for
from modelpress.training import TrainConfig, train_and_save

MODEL, SHAPE = "zoo:resnet18", "1,3,64,64"


def _train(path: Path, console: Console) -> None:
    console.print(f"training {MODEL} on builtin:digits at {SHAPE} → {path} (cached next time)")
    recipe = build_recipe({"model": MODEL, "data": "builtin:digits", "input_shape": SHAPE})
    train_and_save(recipe, TrainConfig(epochs=4, lr=1e-3, seed=0), path)


def _peers(ctx, fp32_onnx: Path, work: Path) -> dict[str, Artifact]:
    from onnxruntime.quantization import QuantFormat, quantize_static

    names = [s.name for s in ctx.input_specs]
    calib = ctx.data.calibration

    class Reader:
        def __init__(self) -> None:
            self.items = iter([{names[0]: calib.inputs[0][i : i + 1]} for i in range(len(calib))])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    peers = {}
    ort_default = work / "ort-quantize-static-defaults.onnx"
    logging.disable(logging.WARNING)
    quantize_static(str(fp32_onnx), str(ort_default), Reader(), quant_format=QuantFormat.QDQ)
    peers["ORT quantize_static (defaults)"] = Artifact(
        "peer-ort", "onnx", ctx.input_specs, "int8", ort_default
    )
    try:
        import nncf
        import openvino as ov
    except ImportError:
        return peers
    samples = [calib.inputs[0][i : i + 1] for i in range(len(calib))]
    with contextlib.redirect_stdout(io.StringIO()):
        model = nncf.quantize(
            ov.convert_model(str(fp32_onnx)), nncf.Dataset(samples), subset_size=len(samples)
        )
    ov.save_model(model, str(work / "nncf-ptq.xml"))
    peers["NNCF PTQ → OpenVINO"] = Artifact(
        "peer-ov",
        "openvino",
        ctx.input_specs,
        "int8",
        work / "nncf-ptq.xml",
        companions=[work / "nncf-ptq.bin"],
    )
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/bench/resnet18-digits64.pt"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/quantization"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    console = Console(width=160)
    if not args.checkpoint.is_file():
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        _train(args.checkpoint, console)

    try:
        import litert_torch  # noqa: F401

        tflite_steps = [
            {"type": "export", "format": "tflite"},
            {"type": "export", "format": "tflite", "precision": "int8"},
        ]
    except ImportError:
        tflite_steps = []
    try:
        import openvino  # noqa: F401

        ov_steps = [
            {"type": "export", "format": "openvino"},
            {"type": "export", "format": "openvino", "precision": "int8"},
        ]
    except ImportError:
        ov_steps = []
    recipe = build_recipe(
        {
            "name": "bench-quantization",
            "model": str(args.checkpoint),
            "data": "builtin:digits",
            "targets": {"max_accuracy_drop": 0.5},
            "steps": [
                {"type": "export", "format": "onnx"},
                {"type": "export", "format": "onnx", "precision": "int8"},
                {"type": "export", "format": "onnx", "precision": "fp16"},
                {"type": "quantize", "method": "static"},
                {
                    "type": "export",
                    "format": "onnx",
                    "precision": "int8",
                    "name": "export-onnx-pt2e",
                },
                *ov_steps,
                *tflite_steps,
            ],
            "evaluate": {"threads": args.threads, "repeats": 50, "batch_sizes": [1]},
        }
    )
    console.print("running the modelpress recipe …")
    record = pipeline.run(recipe, out=args.out, force=True)
    rec_name = record["recommendation"]["name"]
    arts = {a["name"]: a for a in record["artifacts"] if a.get("status") == "ok"}

    ctx, baseline = build_context(recipe)
    work = args.out / "peers"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    contenders: dict[str, Artifact] = {"torch eager fp32 (baseline)": baseline}
    for name, entry in arts.items():  # every deployable artifact (torch ones are references)
        if entry["format"] != "torch":
            contenders[f"modelpress {name}" + (" ★" if name == rec_name else "")] = Artifact(
                name,
                entry["format"],
                ctx.input_specs,
                entry["precision"],
                args.out / entry["path"],
                companions=[args.out / p for p in entry.get("companions", [])],
            )
    contenders.update(_peers(ctx, args.out / arts["onnx-fp32"]["path"], work))

    val = ctx.data.validation
    ref = runtime_for(baseline, args.threads).predict(val.inputs, 64)
    rows, calls = {}, {}
    for label, art in contenders.items():
        rt = runtime_for(art, args.threads)
        out = rt.predict(val.inputs, 64)
        size = (
            sum(p.stat().st_size for p in art.model_files())
            if art.path
            else record["baseline"]["size_bytes"]
        )
        rows[label] = {
            "top1": float((out.argmax(1) == val.labels).mean()),
            "size": size,
            "agree": compare_outputs(out, ref)["agreement"],
            "art": art,
        }
        calls[label] = rt.prepare(val.sample_batch(1))
    times: dict[str, list[np.ndarray]] = {k: [] for k in calls}
    for _ in range(args.rounds):
        for label, fn in calls.items():
            times[label].append(time_callable(fn, warmup=10, repeats=args.repeats))
    for label, chunks in times.items():
        t = np.concatenate(chunks)
        rows[label] |= {"p50": float(np.median(t)), "p90": float(np.percentile(t, 90))}

    eager = rows["torch eager fp32 (baseline)"]
    table = Table(
        title=f"{MODEL} digits {SHAPE}, batch 1, {args.threads} threads, "
        f"{args.rounds}×{args.repeats} calls each (interleaved)"
    )
    for col in ("artifact", "p50 ms", "p90 ms", "× eager", "size MB", "top-1", "agreement"):
        table.add_column(col, justify="left" if col == "artifact" else "right")
    for label, r in rows.items():
        table.add_row(
            label,
            f"{r['p50']:.3f}",
            f"{r['p90']:.3f}",
            f"{eager['p50'] / r['p50']:.1f}×",
            f"{r['size'] / 1e6:.2f}",
            f"{r['top1']:.4f}",
            f"{100 * r['agree']:.1f}%",
        )
    console.print(table)

    choice = next(v for k, v in rows.items() if k.endswith("★"))
    runtime_fp32 = next(
        (
            v
            for k, v in rows.items()
            if v["art"].format == choice["art"].format and v["art"].precision == "fp32"
        ),
        None,
    )
    peers = [v for k, v in rows.items() if "ORT quantize_static" in k or "NNCF" in k]
    fastest_peer = min(p["p50"] for p in peers)
    checks = [
        (
            "latency ≤ 1.1× the fastest peer",
            choice["p50"] <= 1.1 * fastest_peer,
            f"{choice['p50']:.3f} vs {fastest_peer:.3f} ms",
        ),
        (
            "≥ 4× faster than the same runtime's FP32",
            runtime_fp32 is not None and runtime_fp32["p50"] / choice["p50"] >= 4,
            f"{runtime_fp32['p50'] / choice['p50']:.2f}×"
            if runtime_fp32
            else "no fp32 in that runtime",
        ),
        (
            "size ≤ 26 % of FP32",
            choice["size"] <= 0.26 * eager["size"],
            f"{100 * choice['size'] / eager['size']:.1f} %",
        ),
        (
            "top-1 drop ≤ 0.5 pt",
            eager["top1"] - choice["top1"] <= 0.005,
            f"{100 * (choice['top1'] - eager['top1']):+.2f} pt",
        ),
        (
            "agreement with FP32 ≥ 99.5 %",
            choice["agree"] >= 0.995,
            f"{100 * choice['agree']:.2f} %",
        ),
    ]
    console.print(f"modelpress chose [bold]{rec_name}[/]: {record['recommendation']['why']}")
    failed = sum(not ok for _, ok, _ in checks)
    for text, ok, value in checks:
        console.print(f"  {'[green]PASS[/]' if ok else '[red]FAIL[/]'}  {text}: {value}")
    fp16 = arts.get("onnx-fp16")
    if fp16:
        ratio = fp16["size_bytes"] / arts["onnx-fp32"]["size_bytes"]
        ok = ratio <= 0.51 and -fp16["metric_delta_pt"] <= 0.2
        failed += not ok
        console.print(
            f"  {'[green]PASS[/]' if ok else '[red]FAIL[/]'}  fp16 ≤ 51 % of FP32 size, "
            f"drop ≤ 0.2 pt: {100 * ratio:.1f} %, {fp16['metric_delta_pt']:+.2f} pt"
        )
    failed += not _transformer(args, console)
    if failed:  # a benchmark whose targets fail says so in its exit code too
        raise SystemExit(1)


def _transformer(args: argparse.Namespace, console: Console) -> bool:
    """A transformer encoder over integer token ids: ONNX INT8 fidelity and speed vs ONNX FP32."""
    tokens = args.out.parent / "tokens.npz"
    rng = np.random.default_rng(0)
    np.savez(tokens, x=rng.integers(0, 1000, (600, 32)).astype(np.int64))
    recipe = build_recipe(
        {
            "name": "bench-transformer",
            "model": "zoo:text_encoder",
            "model_kwargs": {"dim": 128, "layers": 2, "heads": 4},
            "data": f"npz:{tokens}",
            "steps": [
                {"type": "export", "format": "onnx"},
                {"type": "export", "format": "onnx", "precision": "int8-dynamic"},
                {"type": "export", "format": "onnx", "precision": "int8"},
            ],
            "evaluate": {"threads": args.threads, "repeats": 200, "batch_sizes": [1]},
        }
    )
    record = pipeline.run(recipe, out=args.out.parent / "transformer", force=True)
    arts = {a["name"]: a for a in record["artifacts"]}
    fp32 = arts["onnx-fp32"]["latency_ms"]["median"]
    table = Table(title="zoo:text_encoder (dim 128, 2 layers) over int64 tokens (1, 32), fidelity")
    for col in ("artifact", "p50 ms", "× ONNX fp32", "cosine vs FP32", "size MB"):
        table.add_column(col, justify="left" if col == "artifact" else "right")
    for name, a in arts.items():
        p50 = a["latency_ms"]["median"]
        table.add_row(
            name,
            f"{p50:.3f}",
            f"{fp32 / p50:.2f}×",
            f"{a['metrics']['cosine']:.5f}",
            f"{a['size_bytes'] / 1e6:.2f}",
        )
    console.print(table)
    best = min(
        (a for n, a in arts.items() if n != "onnx-fp32"), key=lambda a: a["latency_ms"]["median"]
    )
    ok = best["metrics"]["cosine"] >= 0.99 and best["latency_ms"]["median"] < fp32
    console.print(
        f"  {'[green]PASS[/]' if ok else '[red]FAIL[/]'}  transformer INT8 ({best['name']}): "
        f"cosine {best['metrics']['cosine']:.4f} ≥ 0.99 and faster than ONNX fp32 "
        f"({best['latency_ms']['median']:.3f} vs {fp32:.3f} ms)"
    )
    return ok


if __name__ == "__main__":
    main()
