"""THE timing guard is passed in (``Runner(guard=...)``, ``Context.timing``), never patched in:
every timing of a run — harness, own-process memory, a step's candidates, the races — holds it
and records ``timed_between``. Two workers with the real machine-wide lock: no timing overlaps
another timing, nor the other worker's work (training, export, calibration)."""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelpress.engine.measure import Timing


def test_a_timing_holds_the_guard_passed_in_and_says_when_it_ran() -> None:
    held: list[str] = []

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        held.append("in")
        yield
        held.append("out")

    timing = Timing(guard)
    with timing.held("a candidate") as window:
        held.append("timed")

    assert held == ["in", "timed", "out"]
    assert len(window) == 2 and window[0] <= window[1]
    assert timing.windows == [{"what": "a candidate", "timed_between": window}]


def _worker(lock: str, model: str, out: str, result: str) -> None:
    """A search worker's way: the node's work under the shared hold, the runner given the
    real guard (``_Held.timing``)."""
    from modelpress.core.observer import Observer
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.pipeline import Runner
    from modelpress.search.parallel import MachineLock, _Held

    steps = [
        {"type": "prune", "method": "structured", "ratio": 0.5, "finetune_epochs": 1},
        {"id": "fp32", "type": "export", "format": "onnx", "from": "baseline"},
        {"id": "int8", "type": "export", "format": "onnx", "precision": "int8", "from": "baseline"},
    ]
    recipe = build_recipe(
        {
            "model": model,
            "data": "builtin:digits",
            "steps": steps,
            "evaluate": {"warmup": 1, "repeats": 5, "batch_sizes": [1, 8], "int8_coverage": False},
        }
    )
    held = _Held(MachineLock(lock))
    runner = Runner(recipe, Path(out), Observer(), False, guard=held.timing)
    with held.work():
        runner.start()
        for index in range(len(recipe.steps)):
            runner.run_step(index)
        record = runner.finish(reports=False)
    Path(result).write_text(
        json.dumps({"record": record, "timings": runner.timing.windows, "worked": held.worked})
    )


def _recorded_windows(record: dict[str, Any]) -> list[list[float]]:
    """Every ``timed_between`` the record holds, wherever it sits."""
    found: list[list[float]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "timed_between":
                    found.append(v)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(record)
    return found


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_workers_never_time_beside_a_timing_or_the_other_s_work(
    trained_mlp: Path, tmp_path: Path
) -> None:
    ctx = mp.get_context("spawn")
    lock = f"test-guard-{tmp_path.name}"
    results = [tmp_path / f"w{i}.json" for i in (0, 1)]
    workers = [
        ctx.Process(
            target=_worker, args=(lock, str(trained_mlp), str(tmp_path / f"run{i}"), str(r))
        )
        for i, r in enumerate(results)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    assert [w.exitcode for w in workers] == [0, 0]
    runs = [json.loads(r.read_text()) for r in results]

    for run in runs:  # every timing the record shows was taken under the guard
        logged = [t["timed_between"] for t in run["timings"]]
        recorded = _recorded_windows(run["record"])
        # (a file measured in its own process: its process's window, inside the guard's)
        inside = [any(g[0] <= w[0] <= w[1] <= g[1] for g in logged) for w in recorded]
        assert recorded and all(inside), [
            w for w, ok in zip(recorded, inside, strict=True) if not ok
        ]
        whats = " | ".join(t["what"] for t in run["timings"])
        for kind in ("benchmark", "in its own process", "uint8 vs int8", "quantized vs FP32"):
            assert kind in whats, whats
        int8 = next(a for a in run["record"]["artifacts"] if a["precision"] == "int8")
        assert int8["details"]["activation_type"]["timed_between"] in logged
        assert int8["vs_fp32"]["timed_between"] in logged
    spans = [[run["worked"][0][0], run["worked"][-1][1]] for run in runs]
    assert _overlap(*spans), "the two workers did not run at the same time: nothing was tested"
    timings = [[t["timed_between"] for t in run["timings"]] for run in runs]
    for a, b in itertools.combinations(sorted(timings[0] + timings[1]), 2):
        assert not _overlap(a, b), f"two timings overlapped: {a} {b}"
    for mine, theirs in ((0, 1), (1, 0)):
        for timed in timings[mine]:
            for work in runs[theirs]["worked"]:
                assert not _overlap(timed, work), f"a timing {timed} ran beside work {work}"
