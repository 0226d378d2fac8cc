"""Parallel trials: the machine-wide timing lock, and Ray scheduling with fake sleep-bound nodes
(two 2-second nodes finish in under 3 s; their benchmarks never overlap)."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from modelpress.search.parallel import MachineLock, _Held


def _hold_shared(name: str, started, seconds: float) -> None:
    lock = MachineLock(name)
    with lock.shared():
        started.set()
        time.sleep(seconds)


def test_an_exclusive_hold_waits_for_running_work_and_stops_new_work(tmp_path: Path) -> None:
    name = f"test-{tmp_path.name}"
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    worker = ctx.Process(target=_hold_shared, args=(name, started, 1.5))
    worker.start()
    try:
        assert started.wait(30)
        lock = MachineLock(name)
        t0 = time.monotonic()
        with lock.exclusive():
            waited = time.monotonic() - t0
        assert waited >= 1.0  # the other process's work finished first
        with lock.shared(), lock.shared():  # shared holds coexist
            pass
    finally:
        worker.join(30)


def test_a_worker_gives_up_its_shared_hold_while_it_times() -> None:
    held = _Held(MachineLock("test-held"))
    with held.work():
        with held.timing():  # would deadlock if the shared hold were kept
            pass
        assert held.stack is not None  # taken back for the rest of the node's work


def test_two_sleep_bound_nodes_run_at_once_and_their_benchmarks_never_overlap(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    from modelpress.search.parallel import RayExecutor

    @ray.remote(num_cpus=1)
    class Sleeper:
        def __init__(self, recipe: dict, out: str, lock: str) -> None:
            self.held = _Held(MachineLock(lock))

        def build(self, chain: list, deadline: float | None) -> dict:
            with self.held.work():
                time.sleep(2.0)  # training: sleep-bound, so two overlap even on 2 cores
                with self.held.timing():
                    start = time.time()
                    time.sleep(0.3)  # the benchmark
                    return {"status": "ok", "window": [start, time.time()], "id": chain[-1]}

    executor = RayExecutor({}, tmp_path, 2, worker_class=Sleeper)
    try:
        t0 = time.monotonic()
        executor.submit(["a"], "a")
        executor.submit(["b"], "b")
        results = dict([executor.wait(), executor.wait()])
        took = time.monotonic() - t0
    finally:
        executor.close()
    assert set(results) == {"a", "b"}
    # Ray's INFO lines ("Started a local Ray instance") and notices (its auth token) kept off
    said = capfd.readouterr().err
    assert not [ln for ln in said.splitlines() if ln.split()[2:3] in (["INFO"], ["WARNING"])], said
    assert took < 3.0, f"two 2-second nodes took {took:.2f} s: they did not run at once"
    (a0, a1), (b0, b1) = results["a"]["window"], results["b"]["window"]
    assert a1 <= b0 or b1 <= a0, "two benchmarks overlapped"


def test_workers_above_one_without_ray_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from modelpress.search.parallel import ParallelError, require_ray

    real = builtins.__import__

    def no_ray(name: str, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ParallelError, match=r"--workers 2: .*pip install 'modelpress\[ray\]'"):
        require_ray("--workers 2")


@pytest.mark.slow
def test_a_search_on_two_workers_measures_what_one_measures(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    import json

    from modelpress.core.recipe import load_recipe
    from modelpress.search.optimize import Search, Settings
    from modelpress.search.space import check

    recipe = load_recipe(
        {
            "model": "zoo:mlp",
            "model_kwargs": {"hidden": [64]},
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
            "evaluate": {"repeats": 20, "warmup": 5},
        }
    )
    space = check(
        {
            "prune": {"method": "structured", "ratio": [0, 0.5], "finetune_epochs": 2},
            "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
        }
    )
    records = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        Search(recipe, Settings({"max_accuracy_drop": 100.0}, space, workers=workers), out).run()
        records[workers] = json.loads((out / "record.json").read_text())
    by_name = [{a["name"]: a for a in records[w]["artifacts"]} for w in (1, 2)]
    assert set(by_name[0]) == set(by_name[1])
    for name, a in by_name[0].items():  # the same nodes, the same accuracy
        assert by_name[1][name]["metrics"]["top1"] == pytest.approx(a["metrics"]["top1"]), name
    # every timing of any kind (harness, a step's candidates, the races): none overlaps another
    windows = sorted({tuple(w) for w in _timed_between(records[2])})
    assert len(windows) > len(by_name[1])  # the candidates' and the races' too
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end <= start, "two timings overlapped"


def _timed_between(value: object) -> list[list[float]]:
    """Every ``timed_between`` a record holds, wherever it sits."""
    if isinstance(value, dict):
        found = [value["timed_between"]] if "timed_between" in value else []
        return found + [
            w for k, v in value.items() if k != "timed_between" for w in _timed_between(v)
        ]
    if isinstance(value, list):
        return [w for v in value for w in _timed_between(v)]
    return []


def test_an_unreachable_ray_address_is_one_line_at_once() -> None:
    from modelpress.search.parallel import ParallelError, check_reachable

    t0 = time.monotonic()
    with pytest.raises(ParallelError, match=r"--ray-address 127\.0\.0\.1:9: nothing answers there"):
        check_reachable("127.0.0.1:9", timeout=1.0)
    assert time.monotonic() - t0 < 5
    with pytest.raises(ParallelError, match="give HOST:PORT"):
        check_reachable("nowhere")


@pytest.mark.slow
def test_tpe_on_two_workers_proposes_max_trials_distinct_pipelines(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    import json

    from helpers.recipes import train_mlp
    from modelpress.core.recipe import load_recipe
    from modelpress.search.optimize import Search, Settings
    from modelpress.search.space import check

    # trained: an untrained model is at chance, and its plain export `collapsed` (a failed
    # trial) whenever the sampler proposes it
    model = train_mlp(tmp_path / "mlp.pt", "builtin:digits", "1,1,8,8", [32], 3)
    recipe = load_recipe(
        {
            "model": model,
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
            "evaluate": {"repeats": 5, "warmup": 1, "batch_sizes": [1]},
        }
    )
    space = check(
        {
            "prune": {"method": "structured", "ratio": [0, 0.3, 0.5, 0.7], "finetune_epochs": 1},
            "export": {"format": ["onnx"], "precision": ["fp32", "fp16", "int8"]},
        }
    )
    settings = Settings({"max_accuracy_drop": 100.0}, space, max_trials=4, workers=2)
    Search(recipe, settings, tmp_path / "s").run()
    journal = json.loads((tmp_path / "s" / "optimize.json").read_text())
    assert "Optuna's multi-objective TPE" in journal["note"]
    assert len(journal["trials"]) == 4 and len({t["id"] for t in journal["trials"]}) == 4
    assert all(t["status"] == "done" for t in journal["trials"])
