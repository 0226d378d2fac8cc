"""``modelpress optimize`` against the best single technique, on one machine, in one run.

    python benchmarks/bench_optimize.py [--budget 20m] [--max-drop 1.0] [--fresh]

zoo:resnet18 trained on the built-in digits at 64×64×3 (the checkpoint bench_compare caches
under runs/bench/). First every technique of ``modelpress compare`` alone (its run reused when
present); then ``optimize`` over its default space (a half-width ResNet-18 student or none;
no pruning, 30 % or 50 % of the channels; ONNX FP32, FP16, INT8) with the accuracy bound and
the time budget; then the search's pick and the fastest single-technique artifact within the
same bound are timed side by side in one loop (batch 1), and the saved winning recipe is run
again with ``modelpress run``. PASS/FAIL:
  - the search finishes within the budget + 5 %;
  - its pick is ≥ 2× faster than the fastest single-technique artifact within the bound, at ≤ the
    bound's top-1 drop;
  - the saved recipe reproduces the pick's top-1 within 0.2 pt;
  - (``--workers 2``, needs the [ray] extra) the same search on two Ray workers measures the same
    candidates, its front matches within timing noise, and no two benchmarks overlapped; its wall
    time beside the serial one (on 2 cores CPU-bound trials are not faster in parallel).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelpress import techniques
from modelpress.core.recipe import build_recipe, load_recipe
from modelpress.engine import pipeline
from modelpress.engine.train import train_and_save
from modelpress.training import TrainConfig

CHECKPOINT = Path("runs/bench/resnet18-digits64.pt")  # shared with bench_compare.py
SHAPE = "1,3,64,64"
ROOT = Path("runs/bench/optimize")
DATA = "builtin:digits"


def _checkpoint(console: Console) -> Path:
    if not CHECKPOINT.is_file():
        console.print(f"training zoo:resnet18 → {CHECKPOINT} (cached next time)")
        CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
        train = build_recipe({"model": "zoo:resnet18", "data": DATA, "input_shape": SHAPE})
        train_and_save(train, TrainConfig(epochs=4, lr=1e-3, seed=0), CHECKPOINT)
    return CHECKPOINT


def _base(threads: int) -> dict:
    return {
        "model": str(CHECKPOINT.resolve()),
        "data": DATA,
        "input_shape": SHAPE,
        "evaluate": {"threads": threads, "repeats": 50},
    }


def _compare(threads: int, epochs: int, fresh: bool) -> dict:
    steps, compared = techniques.steps(
        list(techniques.TECHNIQUES),
        ["onnx"],
        epochs=epochs,
        student="zoo:resnet18",
        student_kwargs={"width_mult": 0.5},
    )
    recipe = build_recipe({**_base(threads), "steps": steps, "compare": compared})
    out = ROOT / "compare"
    resume = (out / "record.json").is_file() and not fresh
    return pipeline.run(recipe, out=out, resume=resume, force=not resume)


def _fastest_within(record: dict, bound: float) -> dict:
    from modelpress.evaluate.targets import loss_pt

    ok = [
        a
        for a in [record["baseline"], *record["artifacts"]]
        if a.get("status", "ok") == "ok" and (loss_pt(a) or 0.0) <= bound
    ]
    return min(ok, key=lambda a: a["latency_ms"]["median"])


def _race(paths: dict[str, Path], threads: int) -> dict:
    from modelpress.deploy.cascade import open_stage
    from modelpress.engine.measure.benchmark import head_to_head

    runtimes, data = {}, None
    try:
        for name, path in paths.items():
            runtimes[name], data = open_stage(
                str(path), DATA, threads, SHAPE, task="classification"
            )
        return head_to_head(runtimes, data.validation.sample_batch, batch=1, warmup=20, repeats=300)
    finally:
        for r in runtimes.values():
            r.close()


def main() -> None:
    from modelpress.cli.optimize import default_space
    from modelpress.search import space as sp
    from modelpress.search.optimize import Search, Settings, parse_budget

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="rerun compare and the search")
    parser.add_argument("--workers", type=int, default=1, help="also search on this many")
    args = parser.parse_args()
    console = Console(width=200)
    _checkpoint(console)

    console.print("compare: every technique alone …")
    compared = _compare(args.threads, args.epochs, args.fresh)
    single = _fastest_within(compared, args.max_drop)

    budget = parse_budget(args.budget)
    assert budget is not None
    space = sp.check(
        default_space(
            str(CHECKPOINT), {}, ["onnx"], args.epochs, "zoo:resnet18", {"width_mult": 0.5}
        )
    )
    out = ROOT / "search"
    if out.exists():
        shutil.rmtree(out)  # the budget is timed from nothing: never a resumed search

    def line(trial, total):
        p = trial.point or {}
        console.print(
            f"  trial {trial.index}/{total} {trial.pipeline.describe()}: {trial.status}"
            + (f" lost {p['loss_pt']:+.2f} pt {p['latency_ms']:.3g} ms" if p else "")
            + (f" ({trial.reason})" if trial.reason else "")
        )

    console.print(f"optimize: budget {args.budget}, max drop {args.max_drop} pt …")
    start = time.monotonic()
    result = Search(
        load_recipe(_base(args.threads)),
        Settings({"max_accuracy_drop": args.max_drop}, space, budget),
        out,
        on_trial=line,
    ).run()
    took = time.monotonic() - start
    journal = json.loads((out / "optimize.json").read_text())
    trials = journal["trials"]
    rec = result["recommendation"]
    record = json.loads((out / "record.json").read_text())
    entries = {a["name"]: a for a in [record["baseline"], *record["artifacts"]]}

    table = Table(title="optimize: the front, and the best single technique")
    for col in ("candidate", "lost pt", "p50 ms", "size MB"):
        table.add_column(col)
    for f in result["front"]:
        mark = " ← recommended" if rec and f["name"] == rec["name"] else ""
        table.add_row(
            f["name"] + mark,
            f"{f['loss_pt']:+.2f}",
            f"{f['latency_ms']:.3g}",
            f"{f['size_mb']:.3g}",
        )
    table.add_row(
        f"single technique: {single['name']}",
        f"{-(single.get('metric_delta_pt') or 0):+.2f}",
        f"{single['latency_ms']['median']:.3g}",
        f"{single['size_bytes'] / 1e6:.3g}",
    )
    console.print(table)
    done = sum(t["status"] == "done" for t in trials)
    skipped = [t for t in trials if t["status"] == "skipped"]
    failed = [t for t in trials if t["status"] == "failed"]
    console.print(
        f"{len(trials)} trials: {done} done, {len(skipped)} skipped, {len(failed)} failed; "
        f"{result['candidates']} candidates measured in {took:.0f} s"
    )
    for t in [*skipped, *failed]:
        console.print(f"  {t['status']}: {t['pipeline']}: {t['reason']}")

    checks = [
        ("search within the budget + 5 %", took <= 1.05 * budget, f"{took:.0f} s of {budget:.0f} s")
    ]
    if rec:
        pick = entries[rec["name"]]
        race = _race(
            {"search": out / pick["path"], "single": ROOT / "compare" / single["path"]}
            if single.get("path")
            else {"search": out / pick["path"]},
            args.threads,
        )
        times = race["results"]
        speedup = (
            times["single"]["median"] / times["search"]["median"] if "single" in times else None
        )
        console.print(
            f"side by side, batch 1: search pick {rec['name']} {times['search']['median']:.3g} ms, "
            f"single technique {single['name']} "
            + (
                f"{times['single']['median']:.3g} ms"
                if "single" in times
                else "(the torch baseline)"
            )
        )
        lost = rec["loss_pt"]
        checks.append(
            (
                "pick ≥ 2× faster than the best single technique within the bound",
                speedup is not None and speedup >= 2.0,
                f"{speedup:.2f}×" if speedup else "not raced",
            )
        )
        checks.append(("pick within the accuracy bound", lost <= args.max_drop, f"{lost:+.2f} pt"))
        again = pipeline.run(load_recipe(Path(rec["recipe"])), out=ROOT / "reproduce", force=True)
        final = again["artifacts"][-1]
        key = again["primary_metric"]
        gap = 100 * abs(final["metrics"][key] - pick["metrics"][key])
        checks.append(
            (
                "saved recipe reproduces the pick's top-1 within 0.2 pt",
                gap <= 0.2,
                f"{final['metrics'][key]:.4f} vs {pick['metrics'][key]:.4f}",
            )
        )
    else:
        checks.append(("a recommendation", False, "no candidate meets the bound"))
    if args.workers > 1:
        checks += _parallel(args, space, budget, took, result, record, line, console)
    for name, ok, value in checks:
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")


def _parallel(args, space, budget, took, result, record, line, console) -> list:
    """The same search on ``args.workers`` Ray workers, beside the serial one."""
    import itertools
    import statistics

    from modelpress.search.optimize import Search, Settings

    out = ROOT / f"search-w{args.workers}"
    if out.exists():
        shutil.rmtree(out)
    console.print(f"optimize on {args.workers} Ray workers …")
    start = time.monotonic()
    other = Search(
        load_recipe(_base(args.threads)),
        Settings({"max_accuracy_drop": args.max_drop}, space, budget, workers=args.workers),
        out,
        on_trial=line,
    ).run()
    took_k = time.monotonic() - start
    rec_k = json.loads((out / "record.json").read_text())
    serial = {a["name"]: a for a in record["artifacts"]}
    par = {a["name"]: a for a in rec_k["artifacts"]}
    common = sorted(set(serial) & set(par))
    ratios = [par[n]["latency_ms"]["median"] / serial[n]["latency_ms"]["median"] for n in common]
    top1 = [abs(par[n]["metrics"]["top1"] - serial[n]["metrics"]["top1"]) for n in common]
    windows = sorted(a["timed_between"] for a in par.values())
    overlaps = sum(1 for (_, end), (s, _) in itertools.pairwise(windows) if end > s)
    front_1 = {f["name"] for f in result["front"]}
    front_k = {f["name"] for f in other["front"]}
    console.print(
        f"wall time: 1 worker {took:.0f} s, {args.workers} workers {took_k:.0f} s "
        f"({took / took_k:.2f}× faster); latency ratio {args.workers} vs 1 worker per candidate: "
        f"median {statistics.median(ratios):.2f}, range {min(ratios):.2f}–{max(ratios):.2f}; "
        f"fronts: 1 worker {sorted(front_1)}, {args.workers} workers {sorted(front_k)}"
    )
    return [
        (
            f"{args.workers} workers measured the same candidates",
            set(serial) == set(par),
            f"{len(common)} in common of {len(serial)} / {len(par)}",
        ),
        (
            "the same accuracy for every candidate",
            max(top1, default=0) == 0,
            f"largest top-1 difference {max(top1, default=0):.4f}",
        ),
        (
            "latencies match within timing noise (median ratio within 15 %)",
            abs(statistics.median(ratios) - 1) <= 0.15,
            f"median ratio {statistics.median(ratios):.2f}",
        ),
        ("no two benchmarks overlapped", overlaps == 0, f"{overlaps} overlaps"),
        (
            "the fronts share the recommended pick",
            (other.get("recommendation") or {}).get("name") in front_1 | {None},
            f"{(other.get('recommendation') or {}).get('name')}",
        ),
    ]


if __name__ == "__main__":
    main()
