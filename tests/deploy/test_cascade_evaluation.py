"""A cascade's time is taken by the harness: warm-up first, then timed passes, load checked."""

from __future__ import annotations

import time

import numpy as np

from modelpress.deploy.evaluation import evaluate
from modelpress.deploy.exits import RULES
from modelpress.deploy.stage import Routed
from modelpress.tasks import find_task


class SlowFirstCall:
    """A cascade of no stages whose first predict is cold (200 ms), every later one 1 ms."""

    threads = 1
    task = find_task("binary")
    rule = RULES["thresholds"]

    def __init__(self) -> None:
        self.stages: list = []
        self.meta: dict = {}
        self.calls = 0

    def labels(self, labels: np.ndarray) -> np.ndarray:
        return labels

    def predict(self, inputs: list[np.ndarray]) -> Routed:
        self.calls += 1
        time.sleep(0.2 if self.calls == 1 else 0.001)
        n = len(inputs[0])
        return Routed(np.full(n, 0.9), np.ones(n, np.int64), np.zeros(n, np.int64))


def test_the_cascade_s_cold_first_pass_is_a_warm_up_not_its_time() -> None:
    cascade = SlowFirstCall()
    inputs, labels = [np.zeros((4, 1, 8, 8), np.float32)], np.array([0, 1, 1, 0])

    figures = evaluate(cascade, inputs, labels, repeats=1)  # type: ignore[arg-type]

    c = figures["cascade"]
    assert 4 * c["ms_per_item"] < 100  # the 200 ms first pass is not timed
    assert cascade.calls == 1 + 1 + 1 + 4  # warm-up pass, timed pass, warm-up item, 4 items
    assert isinstance(c["unreliable"], list)
    assert c["accuracy"] == 0.5 and c["items"] == 4


def test_unreliable_timings_are_said_once_under_the_cascade_table() -> None:
    from modelpress.cli.cascade import show
    from modelpress.cli.common import console

    load = "1-minute load average {} (> 2 threads): other work was running"
    row = {"auc": 0.99, "ms_per_item": 0.1, "throughput_per_s": 1e4, "single_ms": {}}
    figures = {
        "cascade": {**row, "stage_share": [0.6, 0.4], "unreliable": [load.format("6.32")]},
        "stages": [
            {"name": "fast", "alone": {**row, "unreliable": [load.format("6.38")]}},
            {"name": "precise", "alone": {**row, "unreliable": []}},
        ],
    }

    with console.capture() as captured:
        show(figures, None, [])

    said = [line for line in captured.get().splitlines() if "timings unreliable" in line]
    assert len(said) == 1 and "6.32" in said[0] and "6.38" not in said[0]
