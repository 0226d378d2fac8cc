"""The Pareto front on hand-made points: accuracy lost, latency and size, all minimised."""

from modelpress.search.front import dominates, misses, pareto, point, shortfall


def test_dominates_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert dominates([0.0, 1.0, 1.0], [1.0, 2.0, 2.0])
    assert not dominates([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])  # a tie dominates nothing
    assert not dominates([0.0, 5.0, 1.0], [1.0, 2.0, 1.0])  # better on one, worse on another
    assert not dominates([1.0, 2.0, 4.0], [1.0, 2.0, 3.0])


def test_pareto_drops_a_dominated_point_and_keeps_ties_in_input_order() -> None:
    points = [
        [0.5, 2.0, 1.0],  # 0: on the front
        [0.5, 2.0, 1.0],  # 1: the same point: both stay
        [0.6, 2.5, 1.0],  # 2: dominated by 0
        [2.0, 1.0, 3.0],  # 3: the fastest
        [3.0, 3.0, 0.2],  # 4: the smallest
        [3.0, 3.0, 0.3],  # 5: dominated by 4 (on size alone)
    ]
    assert pareto(points) == [0, 1, 3, 4]


def test_pareto_of_one_point_and_of_none() -> None:
    assert pareto([[1.0, 1.0, 1.0]]) == [0]
    assert pareto([]) == []


def test_point_reads_the_objectives_or_none_when_one_is_missing() -> None:
    entry = {
        "primary_metric": "top1",
        "metric_delta_pt": -1.5,  # top1 fell by 1.5 points: 1.5 lost
        "latency_ms": {"median": 0.25},
        "size_bytes": 2_500_000,
    }
    assert point(entry) == {"loss_pt": 1.5, "latency_ms": 0.25, "size_mb": 2.5}
    assert point({**entry, "latency_ms": None}) is None
    assert point({k: v for k, v in entry.items() if k != "metric_delta_pt"}) is None


def _result(target: float, value: float | None, met: bool) -> dict:
    return {"target": target, "value": value, "met": met}


def test_shortfall_orders_fewer_misses_then_smaller_ones_first() -> None:
    met = {"max_size_mb": _result(5.0, 4.0, True), "max_accuracy_drop": _result(1.0, 0.5, True)}
    slightly = {"max_size_mb": _result(5.0, 5.5, False), "max_accuracy_drop": _result(1, 0, True)}
    far = {"max_size_mb": _result(5.0, 20.0, False), "max_accuracy_drop": _result(1, 0, True)}
    both = {"max_size_mb": _result(5.0, 5.1, False), "max_accuracy_drop": _result(1, 1.1, False)}
    unmeasured = {
        "max_size_mb": _result(5.0, None, False),
        "max_accuracy_drop": _result(1, 0, True),
    }
    assert shortfall(met) == (0, 0.0)
    assert shortfall(slightly) == (1, 0.1)
    ranked = sorted(
        ["far", "both", "unmeasured", "slightly", "met"],
        key=lambda n: shortfall(
            {
                "far": far,
                "both": both,
                "unmeasured": unmeasured,
                "slightly": slightly,
                "met": met,
            }[n]
        ),
    )
    assert ranked == ["met", "slightly", "far", "unmeasured", "both"]


def test_misses_says_what_is_missed_by_how_much() -> None:
    results = {
        "max_size_mb": _result(5.0, 6.1, False),
        "max_accuracy_drop": _result(1.0, 0.2, True),
        "min_speedup": _result(2.0, None, False),
    }
    assert misses(results) == ["max_size_mb 6.1 vs 5 (+22 %)", "min_speedup not measured"]
    assert misses({"max_size_mb": _result(5.0, 4.0, True)}) == []
