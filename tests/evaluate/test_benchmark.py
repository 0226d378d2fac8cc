import time

import numpy as np
import pytest
import torch
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.engine.measure.benchmark import benchmark_runtime, latency, peak_memory_mb
from modelpress.evaluate.size import count_macs
from modelpress.runtimes.eager import TorchRuntime


def test_latency_reports_median_p90_of_the_timed_calls() -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        time.sleep(0.002)

    stats = latency(fn, warmup=2, repeats=5, batch=1, threads=2)
    assert len(calls) == 7
    assert 2.0 <= stats.median <= stats.p90
    assert stats.min <= stats.median and stats.repeats == 5


def test_macs_of_a_linear_and_a_conv_are_exact() -> None:
    linear = nn.Linear(30, 10)
    assert count_macs(linear, [torch.zeros(1, 30)]) == 300
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_macs(conv, [torch.zeros(1, 3, 16, 16)]) == 8 * 3 * 9 * 16 * 16


def test_peak_memory_sees_a_large_allocation() -> None:
    peak, growth = peak_memory_mb(lambda: np.ones(64 * 2**20 // 8).sum(), calls=1)
    if peak is None:
        pytest.skip("this kernel does not allow resetting the RSS high-water mark")
    assert growth >= 50  # a 64 MiB array was live during the call


def test_benchmark_runtime_measures_each_batch_size() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    runtime = TorchRuntime(Artifact("m", "torch", [InputSpec("input", (1, 64))], module=model), 2)
    x = np.random.default_rng(0).random((20, 64), dtype=np.float32)
    result = benchmark_runtime(
        runtime, lambda b: [x[np.arange(b) % 20]], batch_sizes=[1, 16], warmup=1, repeats=3
    )
    assert [b["batch"] for b in result["latency_by_batch"]] == [1, 16]
    assert result["latency_ms"]["batch"] == 1 and result["latency_ms"]["threads"] == 2
    assert result["throughput_batch"] == 16
    assert result["throughput_per_s"] == pytest.approx(
        16000 / result["latency_by_batch"][1]["median"]
    )


def test_candidates_side_by_side_have_a_median_each() -> None:
    """The timing a step's choice reads (under the run's guard: tests/engine/test_timing_guard)."""
    from modelpress.engine.measure.benchmark import median_ms_side_by_side

    medians = median_ms_side_by_side({"a": lambda: None, "b": lambda: sum(range(2000))})

    assert set(medians) == {"a", "b"} and medians["b"] > medians["a"] > 0


def test_latency_and_result_keeps_the_first_call_s_answer_and_times_the_others() -> None:
    from modelpress.engine.measure.benchmark import latency_and_result

    calls: list[float] = []

    def fn() -> int:
        time.sleep(0.2 if not calls else 0.002)  # a cold first call, as a runtime's is
        calls.append(1)
        return len(calls)

    stats, first = latency_and_result(fn, warmup=1, repeats=3, batch=1, threads=1)
    assert first == 1 and len(calls) == 4 and stats.repeats == 3
    assert stats.median < 100  # the cold call is not among the timed ones
    with pytest.raises(ValueError, match="warmup"):
        latency_and_result(fn, warmup=0, repeats=3, batch=1, threads=1)


def test_a_slow_call_is_timed_within_the_budget_and_the_cut_is_said() -> None:
    """A model whose one call takes seconds is not timed 50 times at every batch size: the
    timing stops at its budget (after MIN_REPEATS calls at least) and says so."""
    import time as _time

    from modelpress.engine.measure.benchmark import MIN_REPEATS, latency

    def slow() -> None:
        _time.sleep(0.02)

    stats = latency(slow, warmup=3, repeats=50, batch=1, threads=1, budget_s=0.15)
    assert MIN_REPEATS <= stats.repeats < 50
    assert stats.cut is not None and f"{stats.repeats} of 50 calls timed" in stats.cut
    assert "cut" in stats.as_dict()
    quick = latency(lambda: None, warmup=3, repeats=50, batch=1, threads=1, budget_s=5.0)
    assert quick.repeats == 50 and quick.cut is None and "cut" not in quick.as_dict()
