import time

import numpy as np
import pytest
import torch
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.evaluate.benchmark import benchmark_runtime, count_macs, latency, peak_memory_mb
from modelpress.runtimes.eager import TorchRuntime
from modelpress.sources.inputs import InputSpec


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


def test_a_step_s_candidate_timings_hold_the_timing_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX's activation-type choice and TFLite's stem choice time candidates side by side:
    under the guard parallel search workers install, like every benchmark."""
    import contextlib

    from modelpress.engine import measure
    from modelpress.evaluate.benchmark import median_ms_side_by_side

    held: list[str] = []

    @contextlib.contextmanager
    def guard():  # type: ignore[no-untyped-def]
        held.append("in")
        yield
        held.append("out")

    monkeypatch.setattr(measure, "timing_guard", guard)  # as search/parallel.py installs it
    calls = {"a": lambda: held.append("a"), "b": lambda: held.append("b")}

    medians = median_ms_side_by_side(calls)

    assert set(medians) == {"a", "b"}
    assert held[0] == "in" and held[-1] == "out" and held.count("in") == 1


def test_latency_and_result_keeps_the_first_call_s_answer_and_times_the_others() -> None:
    from modelpress.evaluate.benchmark import latency_and_result

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
