"""Distillation, structured pruning, QAT + KD and the full chain, measured on real data in one run.

    python benchmarks/bench_compression.py [--fresh] [--threads 2]

The teacher is ``zoo:resnet18`` trained on the built-in digits at 64×64×3 (trained on first use
and cached, as in bench_quantization.py). Four modelpress runs, each a plain recipe, cached
under ``--out`` and reused while their recipe and input model are unchanged (``--fresh`` redoes
them):

    chain    teacher → distill (student vs the same student from scratch) → structured prune
             (KD from the teacher) → ONNX INT8                          sections 2 and 6
    modes    teacher → progressive-α distill, two-stage distill        section 3
    prune    teacher → ONNX fp32 → structured prune 0.5 (KD) → ONNX    section 4
    qat      distilled student → ONNX INT8 (PTQ); → QAT + KD → ONNX INT8  section 5

Accuracy is each run's validation top-1 (360 samples: one sample is 0.28 pt). Every latency
that a check compares is timed again here, batch 1, ``--threads``, in interleaved rounds with
the same loop, so cached runs and a busy machine still compare like with like. Each section
prints a table; a summary prints every check as PASS/FAIL and the script exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from modelpress.core import pipeline
from modelpress.core.artifact import Artifact
from modelpress.core.context import build_context
from modelpress.core.recipe import build_recipe
from modelpress.evaluate.benchmark import time_callable
from modelpress.runtimes import runtime_for
from modelpress.training import TrainConfig, train_and_save

MODEL, DATA, SHAPE = "zoo:resnet18", "builtin:digits", "1,3,64,64"
STUDENT = {"student": "zoo:mobilenetv3_small", "student_kwargs": {"width_mult": 0.5}}
# One student schedule for every distillation (and its scratch twin): batch 16 gives ~80 steps
# an epoch, which MobileNetV3's slow BatchNorm statistics (momentum 0.01) need to settle.
SCHEDULE = {"epochs": 15, "lr": 3e-3, "batch_size": 16, "seed": 0}
KD = {"temperature": 4.0, "alpha": 0.5}  # Hinton's defaults, the step's own
PROGRESSIVE = {"alpha_start": 0.9, "alpha_end": 0.1}  # labels first, the teacher more and more
TWO_STAGE = 5  # pretrain epochs on hard labels, out of the same 15 in all
PRUNE_RATIO, PRUNE_EPOCHS = 0.5, 3  # resnet18, KD from the unpruned model
CHAIN_PRUNE = {"ratio": 0.5, "finetune_epochs": 8, "batch_size": 16}  # the student, KD from resnet18
QAT_EPOCHS = 3


def _train(path: Path, console: Console) -> None:
    console.print(f"training {MODEL} on {DATA} at {SHAPE} → {path} (cached next time)")
    recipe = build_recipe({"model": MODEL, "data": DATA, "input_shape": SHAPE})
    train_and_save(recipe, TrainConfig(epochs=4, lr=1e-3, seed=0), path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(name: str, recipe: dict[str, Any], out: Path, fresh: bool, console: Console) -> dict:
    """The record of ``recipe`` run into ``out``; the cached one while recipe and model file are
    unchanged and every step finished."""
    model = Path(recipe["model"])
    key = hashlib.sha256(
        json.dumps(
            {"recipe": recipe, "model_sha256": _sha256(model) if model.is_file() else None},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    key_file, record_file = out / "bench-key.txt", out / "record.json"
    if not fresh and key_file.is_file() and key_file.read_text() == key and record_file.is_file():
        console.print(f"[dim]{name}: cached in {out} (--fresh to redo)[/]")
        return json.loads(record_file.read_text())
    console.print(f"{name}: running {len(recipe['steps'])} steps into {out} …")
    start = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    record = pipeline.run(build_recipe(recipe), out=out, force=True)
    failed = [f"{s['name']}: {s['error']}" for s in record["steps"] if s["status"] != "ok"]
    for line in failed:
        console.print(f"[red]{name}: step {line}[/]")
    if not failed:
        key_file.write_text(key)
    console.print(f"[dim]{name}: {time.perf_counter() - start:.0f} s[/]")
    return record


def _step(record: dict, name: str) -> dict:
    return next(s for s in record["steps"] if s["name"] == name)


def _art(record: dict, name: str) -> dict:
    """The artifact entry of step ``name``, or a stand-in with no numbers when the step failed."""
    return _step(record, name)["artifact"] or {"metrics": {}, "latency_ms": {}}


def _top1(entry: dict) -> float:
    return float(entry.get("metrics", {}).get("top1", float("nan")))


def _seconds(step: dict) -> float:
    """The step's seconds less its scratch twin's training (a distill with compare_scratch)."""
    scratch = step.get("scratch") or {}
    return step["seconds"] - sum(h["seconds"] for h in scratch.get("history", []))


def _artifact(entry: dict, run: Path, specs: list, threads: int) -> Artifact:
    """A runnable Artifact for a record entry (a torch checkpoint is rebuilt from its file)."""
    path = run / entry["path"]
    if entry["format"] == "torch":
        recipe = build_recipe(
            {"model": str(path), "data": DATA, "input_shape": SHAPE, "evaluate": {"threads": threads}}
        )
        return build_context(recipe)[1]
    return Artifact(entry["name"], entry["format"], specs, entry["precision"], path)


def _interleaved(
    arts: dict[str, Artifact], sample: list[np.ndarray], threads: int, rounds: int, repeats: int
) -> dict[str, float]:
    """Batch-1 median milliseconds of each artifact, timed round-robin with one loop."""
    calls = {label: runtime_for(art, threads).prepare(sample) for label, art in arts.items()}
    times: dict[str, list[np.ndarray]] = {k: [] for k in calls}
    for _ in range(rounds):
        for label, fn in calls.items():
            times[label].append(time_callable(fn, warmup=10, repeats=repeats))
    return {k: float(np.median(np.concatenate(v))) for k, v in times.items()}


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _pt(x: float) -> str:
    return f"{100 * x:+.2f} pt"


def _mb(n: float | None) -> str:
    return f"{n / 1e6:.3f}" if n else "–"


def _m(n: float | None) -> str:
    return f"{n / 1e6:.2f} M" if n else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/bench/resnet18-digits64.pt"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/compression"))
    parser.add_argument("--fresh", action="store_true", help="redo the cached runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    console = Console(width=160)
    started = time.perf_counter()
    if not args.checkpoint.is_file():
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        _train(args.checkpoint, console)
    teacher = str(args.checkpoint)
    base = {
        "data": DATA,
        "input_shape": SHAPE,
        "evaluate": {"warmup": 10, "repeats": 50, "batch_sizes": [1], "threads": args.threads},
    }
    distill = {"type": "distill", **STUDENT, **SCHEDULE, **KD}

    # ------------------------------------------------------------------ the runs
    chain_dir = args.out / "chain"
    chain = _run(
        "chain",
        {
            **base,
            "name": "bench-compression-chain",
            "model": teacher,
            "steps": [
                {**distill, "name": "distill", "compare_scratch": True},
                {
                    "type": "prune",
                    "name": "prune-student",
                    "method": "structured",
                    "teacher": teacher,
                    **KD,
                    **CHAIN_PRUNE,
                },
                {"type": "export", "format": "onnx", "precision": "int8", "name": "onnx-int8"},
            ],
        },
        chain_dir,
        args.fresh,
        console,
    )
    modes = _run(
        "modes",
        {
            **base,
            "name": "bench-compression-modes",
            "model": teacher,
            "steps": [  # the teacher named: the second step's input is the first one's student
                {**distill, "name": "distill-progressive", "teacher": teacher, **PROGRESSIVE},
                {
                    **distill,
                    "name": "distill-two-stage",
                    "teacher": teacher,
                    "pretrain_epochs": TWO_STAGE,
                    "epochs": SCHEDULE["epochs"] - TWO_STAGE,
                },
            ],
        },
        args.out / "modes",
        args.fresh,
        console,
    )
    prune_dir = args.out / "prune"
    prune = _run(
        "prune",
        {
            **base,
            "name": "bench-compression-prune",
            "model": teacher,
            "steps": [  # the runner feeds each step the newest artifact it accepts: ONNX first
                {"type": "export", "format": "onnx", "name": "onnx-fp32"},
                {
                    "type": "prune",
                    "method": "structured",
                    "ratio": PRUNE_RATIO,
                    "finetune_epochs": PRUNE_EPOCHS,
                    "teacher": "input",
                },
                {"type": "export", "format": "onnx", "name": "onnx-fp32-pruned"},
            ],
        },
        prune_dir,
        args.fresh,
        console,
    )
    student_entry = _art(chain, "distill")
    qat_dir = args.out / "qat"
    qat = (
        _run(
            "qat",
            {
                **base,
                "name": "bench-compression-qat",
                "model": str(chain_dir / student_entry["path"]),
                "steps": [
                    {"type": "export", "format": "onnx", "precision": "int8", "name": "ptq-int8"},
                    {"type": "qat", "teacher": teacher, "epochs": QAT_EPOCHS},
                    {"type": "export", "format": "onnx", "precision": "int8", "name": "qat-int8"},
                ],
            },
            qat_dir,
            args.fresh,
            console,
        )
        if student_entry.get("path")
        else None
    )

    # ------------------------------------------------------------------ side-by-side timing
    pruned_entry, final_entry = _art(prune, "prune"), _art(chain, "onnx-int8")
    contenders = {
        "teacher eager": (prune, prune_dir, None),
        "teacher ORT": (prune, prune_dir, "onnx-fp32"),
        "pruned eager": (prune, prune_dir, "prune"),
        "pruned ORT": (prune, prune_dir, "onnx-fp32-pruned"),
        "student eager": (chain, chain_dir, "distill"),
        "pruned student eager": (chain, chain_dir, "prune-student"),
        "chain INT8 ORT": (chain, chain_dir, "onnx-int8"),
    }
    if qat is not None:
        contenders |= {"PTQ INT8 ORT": (qat, qat_dir, "ptq-int8")}
        contenders |= {"QAT+KD INT8 ORT": (qat, qat_dir, "qat-int8")}
    ctx, teacher_art = build_context(build_recipe({**base, "model": teacher}))
    arts = {}
    for label, (record, run, step) in contenders.items():
        if step is None:
            arts[label] = teacher_art
        elif _step(record, step)["artifact"]:
            entry = _step(record, step)["artifact"]
            arts[label] = _artifact(entry, run, ctx.input_specs, args.threads)
    console.print(
        f"timing {len(arts)} artifacts side by side: batch 1, {args.threads} threads, "
        f"{args.rounds}×{args.repeats} calls each, interleaved …"
    )
    sample = ctx.data.validation.sample_batch(1)
    p50 = _interleaved(arts, sample, args.threads, args.rounds, args.repeats)
    nan = float("nan")

    def lat(label: str) -> float:
        return p50.get(label, nan)

    checks: list[tuple[str, str, str, str, bool]] = []  # section, check, measured, target, ok

    # ------------------------------------------------------------------ 1. teacher
    teacher_entry = prune["baseline"]
    t_top1 = _top1(teacher_entry)
    console.print(
        _table(
            f"1. Teacher: {MODEL} trained on {DATA} at {SHAPE} ({args.checkpoint})",
            ["model", "top-1", "params", "MACs", "size MB", "eager p50 ms", "ORT p50 ms"],
            [
                [
                    MODEL,
                    f"{100 * t_top1:.2f} %",
                    _m(teacher_entry["params"]),
                    _m(teacher_entry["macs"]),
                    _mb(teacher_entry["size_bytes"]),
                    f"{lat('teacher eager'):.3f}",
                    f"{lat('teacher ORT'):.3f}",
                ]
            ],
        )
    )

    # ------------------------------------------------------------------ 2. distillation
    d_step = _step(chain, "distill")
    d_top1 = _top1(student_entry)
    scratch = (d_step.get("scratch") or {}).get("metrics", {})
    s_top1 = float(scratch.get("top1", nan))
    student_name = f"{STUDENT['student']} ×{STUDENT['student_kwargs']['width_mult']}"
    console.print(
        _table(
            f"2. Distillation: {student_name}, {SCHEDULE['epochs']} epochs, lr {SCHEDULE['lr']}, "
            f"batch {SCHEDULE['batch_size']}, T {KD['temperature']}, α {KD['alpha']}, "
            f"seed {SCHEDULE['seed']}",
            ["model", "top-1", "vs teacher", "params", "MACs", "size MB", "eager p50 ms"],
            [
                [f"teacher {MODEL}", f"{100 * t_top1:.2f} %", "", _m(teacher_entry["params"]),
                 _m(teacher_entry["macs"]), _mb(teacher_entry["size_bytes"]),
                 f"{lat('teacher eager'):.3f}"],
                [f"{student_name} from scratch", f"{100 * s_top1:.2f} %", _pt(s_top1 - t_top1),
                 _m(student_entry.get("params")), _m(student_entry.get("macs")), "", ""],
                [f"{student_name} distilled", f"{100 * d_top1:.2f} %", _pt(d_top1 - t_top1),
                 _m(student_entry.get("params")), _m(student_entry.get("macs")),
                 _mb(student_entry.get("size_bytes")), f"{lat('student eager'):.3f}"],
            ],
        )
    )  # fmt: skip
    checks += [
        ("2 distill", "distilled top-1 > scratch top-1 (same epochs, seed)",
         f"{100 * d_top1:.2f} vs {100 * s_top1:.2f} % ({_pt(d_top1 - s_top1)})", "> 0 pt",
         d_top1 > s_top1),
        ("2 distill", "distilled within 1.5 pt of the teacher",
         _pt(d_top1 - t_top1), "≥ −1.50 pt", t_top1 - d_top1 <= 0.015),
    ]  # fmt: skip

    # ------------------------------------------------------------------ 3. modes
    mode_rows, mode_ok = [], []
    for label, record, name in (
        (f"plain (α {KD['alpha']})", chain, "distill"),
        (f"progressive α {PROGRESSIVE['alpha_start']} → {PROGRESSIVE['alpha_end']}", modes,
         "distill-progressive"),
        (f"two-stage ({TWO_STAGE} hard-label + {SCHEDULE['epochs'] - TWO_STAGE} KD epochs)",
         modes, "distill-two-stage"),
    ):  # fmt: skip
        step = _step(record, name)
        top1 = _top1(_art(record, name))
        mode_ok.append((label, step["status"] == "ok", step["error"]))
        mode_rows.append(
            [
                label,
                step["status"],
                f"{100 * top1:.2f} %",
                _pt(top1 - s_top1),
                _pt(top1 - t_top1),
                f"{_seconds(step):.0f}",
            ]
        )
    console.print(
        _table(
            f"3. Distillation modes ({SCHEDULE['epochs']} epochs in all, same student and seed; "
            f"scratch {100 * s_top1:.2f} %, teacher {100 * t_top1:.2f} %)",
            ["mode", "status", "top-1", "vs scratch", "vs teacher", "seconds"],
            mode_rows,
        )
    )
    for label, ok, error in mode_ok:
        checks.append(("3 modes", f"{label.split(' (')[0]} runs", error or "ok", "ok", ok))

    # ------------------------------------------------------------------ 4. pruning
    p_top1 = _top1(pruned_entry)
    macs_x = teacher_entry["macs"] / pruned_entry["macs"] if pruned_entry.get("macs") else nan
    eager_x = lat("teacher eager") / lat("pruned eager")
    ort_x = lat("teacher ORT") / lat("pruned ORT")
    prune_entries = {
        "teacher eager": teacher_entry,
        "pruned eager": pruned_entry,
        "teacher ORT": _art(prune, "onnx-fp32"),
        "pruned ORT": _art(prune, "onnx-fp32-pruned"),
    }
    console.print(
        _table(
            f"4. Structured pruning of {MODEL}: ratio {PRUNE_RATIO}, {PRUNE_EPOCHS} fine-tune "
            "epochs with KD from the unpruned model",
            ["artifact", "top-1", "vs teacher", "params", "MACs", "size MB", "p50 ms", "speed-up"],
            [
                [
                    label,
                    f"{100 * _top1(e):.2f} %",
                    _pt(_top1(e) - t_top1),
                    _m(e.get("params")),
                    _m(e.get("macs")),
                    _mb(e.get("size_bytes")),
                    f"{lat(label):.3f}",
                    f"{lat(label.replace('pruned', 'teacher')) / lat(label):.2f}×",
                ]
                for label, e in prune_entries.items()
            ],
        )
    )
    checks += [
        ("4 prune", "MACs ≥ 2× lower", f"{macs_x:.2f}×", "≥ 2.00×", macs_x >= 2),
        ("4 prune", "latency ≥ 1.6× lower, torch eager",
         f"{eager_x:.2f}× ({lat('teacher eager'):.2f} → {lat('pruned eager'):.2f} ms)",
         "≥ 1.60×", eager_x >= 1.6),
        ("4 prune", "latency ≥ 1.6× lower, ONNX Runtime",
         f"{ort_x:.2f}× ({lat('teacher ORT'):.2f} → {lat('pruned ORT'):.2f} ms)",
         "≥ 1.60×", ort_x >= 1.6),
        ("4 prune", "top-1 drop ≤ 1.5 pt after fine-tuning", _pt(p_top1 - t_top1),
         "≥ −1.50 pt", t_top1 - p_top1 <= 0.015),
    ]  # fmt: skip

    # ------------------------------------------------------------------ 5. QAT + KD vs PTQ
    if qat is not None:
        ptq, qat_int8 = _art(qat, "ptq-int8"), _art(qat, "qat-int8")
        qat_step = _step(qat, "qat")
        rows = [
            ["distilled student fp32 (eager)", qat["baseline"], "student eager", ""],
            ["PTQ INT8 (ONNX static)", ptq, "PTQ INT8 ORT", f"{_step(qat, 'ptq-int8')['seconds']:.0f}"],
            [f"QAT + KD INT8, torch reference ({QAT_EPOCHS} epochs)", _art(qat, "qat"), "",
             f"{qat_step['seconds']:.0f}"],
            ["QAT + KD INT8 (ONNX)", qat_int8, "QAT+KD INT8 ORT",
             f"{_step(qat, 'qat-int8')['seconds']:.0f}"],
        ]  # fmt: skip
        console.print(
            _table(
                f"5. QAT + KD vs PTQ on the distilled student (teacher {MODEL})",
                ["artifact", "top-1", "vs fp32", "size MB", "p50 ms", "seconds"],
                [
                    [
                        label,
                        f"{100 * _top1(e):.2f} %",
                        _pt(_top1(e) - _top1(qat["baseline"])),
                        _mb(e.get("size_bytes")),
                        f"{lat(key):.3f}" if key else "",
                        secs,
                    ]
                    for label, e, key, secs in rows
                ],
            )
        )
        q, p = _top1(qat_int8), _top1(ptq)
        checks.append(
            ("5 QAT", "QAT+KD INT8 top-1 ≥ PTQ INT8 top-1",
             f"{100 * q:.2f} vs {100 * p:.2f} % ({_pt(q - p)})", "≥ 0 pt", q >= p)
        )  # fmt: skip
    else:
        checks.append(("5 QAT", "QAT+KD INT8 top-1 ≥ PTQ INT8 top-1", "no student", "≥ 0 pt", False))

    # ------------------------------------------------------------------ 6. full chain
    chain_rows = [
        (f"teacher {MODEL} fp32 (eager)", chain["baseline"], "teacher eager"),
        ("distilled student fp32 (eager)", student_entry, "student eager"),
        (f"+ pruned {CHAIN_PRUNE['ratio']} fp32 (eager)", _art(chain, "prune-student"),
         "pruned student eager"),
        ("+ INT8 (ONNX Runtime)", final_entry, "chain INT8 ORT"),
    ]  # fmt: skip
    t_size = chain["baseline"]["size_bytes"]
    console.print(
        _table(
            "6. Full chain: distill → structured prune → INT8, against the FP32 teacher in torch "
            "eager",
            ["artifact", "top-1", "vs teacher", "MACs", "size MB", "smaller", "p50 ms", "faster"],
            [
                [
                    label,
                    f"{100 * _top1(e):.2f} %",
                    _pt(_top1(e) - t_top1),
                    _m(e.get("macs")),
                    _mb(e.get("size_bytes")),
                    f"{100 * (1 - e['size_bytes'] / t_size):.1f} %" if e.get("size_bytes") else "",
                    f"{lat(key):.3f}",
                    f"{lat('teacher eager') / lat(key):.1f}×",
                ]
                for label, e, key in chain_rows
            ],
        )
    )
    f_top1, f_size = _top1(final_entry), final_entry.get("size_bytes")
    smaller = 1 - f_size / t_size if f_size else nan
    faster = lat("teacher eager") / lat("chain INT8 ORT")
    checks += [
        ("6 chain", "size ≥ 95 % smaller than the FP32 teacher",
         f"{100 * smaller:.2f} % ({_mb(t_size)} → {_mb(f_size)} MB)", "≥ 95.00 %",
         smaller >= 0.95),
        ("6 chain", "batch-1 latency ≥ 20× lower than the teacher in eager",
         f"{faster:.1f}× ({lat('teacher eager'):.2f} → {lat('chain INT8 ORT'):.3f} ms)",
         "≥ 20.0×", faster >= 20),
        ("6 chain", "top-1 drop ≤ 1.5 pt vs the teacher", _pt(f_top1 - t_top1), "≥ −1.50 pt",
         t_top1 - f_top1 <= 0.015),
    ]  # fmt: skip

    # ------------------------------------------------------------------ summary
    table = Table(title="Summary: the targets, measured in this run", title_justify="left")
    for col in ("section", "check", "measured", "target", "result"):
        table.add_column(col, justify="right" if col in ("target", "result") else "left")
    for section, text, value, target, ok in checks:
        table.add_row(section, text, value, target, "[green]PASS[/]" if ok else "[red]FAIL[/]")
    console.print(table)
    failed = sum(not ok for *_, ok in checks)
    console.print(
        f"{len(checks) - failed}/{len(checks)} checks pass; "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
