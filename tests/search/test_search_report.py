"""What ``modelpress optimize`` prints and optimize.html says of a candidate: a gain as a gain, a
miss against a bound of 0 by how much (never a percentage of nothing), no "None" for a baseline
without a file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from modelpress.cli import optimize as cli_optimize
from modelpress.search.front import misses
from modelpress.search.report import accuracy_change, write_report


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> Console:
    """The console optimize prints to, recorded."""
    console = Console(record=True, width=200, markup=False, highlight=False)
    monkeypatch.setattr(cli_optimize, "console", console)
    return console


def _result(**changes: Any) -> dict[str, Any]:
    result = {
        "front": [
            {"name": "distilled-int8", "node": "export-3", "loss_pt": -0.56, "latency_ms": 0.2,
             "size_mb": 0.1},
            {"name": "baseline", "node": "baseline", "loss_pt": 0.0, "latency_ms": 1.2,
             "size_mb": 1.0},
        ],
        "recommendation": {
            "name": "baseline", "path": None, "why": "fastest artifact that meets the one target",
            "recipe": None, "on_front": True, "loss_pt": 0.0, "latency_ms": 1.2, "size_mb": 1.0,
        },
        "candidates": 3, "feasible": 2, "seconds": 10.0, "least_violating": [],
    }  # fmt: skip
    return {**result, **changes}


def test_accuracy_change_says_lost_gained_or_no_change() -> None:
    assert accuracy_change(1.234) == "lost 1.23 pt"
    assert accuracy_change(-0.56) == "gained 0.56 pt"
    assert accuracy_change(0.0) == accuracy_change(-0.001) == "no change"  # never "-0.00"
    assert accuracy_change(None) == "—"


def test_a_trial_that_gained_accuracy_is_printed_as_a_gain(printed: Console) -> None:
    trial = SimpleNamespace(
        index=2, status="done", reused=False, pipeline=SimpleNamespace(describe=lambda: "distill"),
        point={"loss_pt": -0.56, "latency_ms": 0.2, "size_mb": 0.1}, on_front=True,
        feasible=True, reason=None,
    )  # fmt: skip
    cli_optimize._table(trial, 4)
    line = printed.export_text()
    assert "gained 0.56 pt, 0.2 ms, 0.1 MB" in line
    assert "lost" not in line


def test_the_front_and_a_baseline_recommendation_read_plainly(
    printed: Console, tmp_path: Path
) -> None:
    cli_optimize.show(_result(), tmp_path)
    text = printed.export_text()
    assert "accuracy vs baseline" in text
    assert "gained 0.56 pt" in text and "no change" in text
    assert "recommended: baseline: fastest artifact that meets the one target" in text
    assert "None" not in text  # no "baseline (None)", no "its recipe: None"
    assert "its recipe" not in text


def test_a_miss_against_a_bound_of_zero_is_absolute(printed: Console, tmp_path: Path) -> None:
    said = misses(
        {
            "max_accuracy_drop": {"target": 0.0, "value": 0.52, "met": False},
            "max_size_mb": {"target": 5.0, "value": 6.1, "met": False},
        }
    )
    assert said == ["max_accuracy_drop 0.52 vs 0 (over by 0.52)", "max_size_mb 6.1 vs 5 (+22 %)"]
    closest = [{"name": "onnx-int8", "loss_pt": 0.52, "latency_ms": 0.3, "size_mb": 6.1,
                "misses": said}]  # fmt: skip
    cli_optimize.show(_result(front=[], recommendation=None, least_violating=closest), tmp_path)
    text = printed.export_text()
    assert "onnx-int8: misses max_accuracy_drop 0.52 vs 0 (over by 0.52); max_size_mb" in text


def test_optimize_html_says_gained_and_names_no_missing_path(tmp_path: Path) -> None:
    journal = {
        "result": _result(),
        "settings": {"targets": {"max_accuracy_drop": 1.0}, "space": {"prune": {"ratio": [0]}}},
        "trials": [
            {"index": 1, "pipeline": "distill", "status": "done", "feasible": True,
             "on_front": True, "point": {"loss_pt": -0.56, "latency_ms": 0.2, "size_mb": 0.1}},
        ],
    }  # fmt: skip
    page = write_report(tmp_path, journal, {"baseline": {}, "artifacts": []}).read_text()
    assert "<b>Recommended: baseline</b> — fastest artifact that meets the one target.</p>" in page
    assert "None" not in page
    assert "<td>gained 0.56 pt</td>" in page and "<td>no change</td>" in page
