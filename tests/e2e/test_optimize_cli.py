"""``modelpress optimize`` as a user runs it: a killed search resumed, a search where nothing is
feasible (exit 3), and bad input refused in one line (exit 2) before any work."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.cli import assert_one_line_error
from helpers.cli import run_cli as cli

BASE = {
    "model": "zoo:mlp",
    "model_kwargs": {"hidden": [64]},
    "data": "builtin:digits",
    "input_shape": "1,1,8,8",
    "evaluate": {"repeats": 5, "warmup": 2, "batch_sizes": [1]},
}
EXPORTS = {"format": ["onnx"], "precision": ["fp32", "int8"]}


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BASE's MLP trained a few epochs: an untrained one is at chance, `collapsed`, and never a
    candidate of a search."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    out = tmp_path_factory.mktemp("mlp") / "mlp.pt"
    recipe = build_recipe({k: v for k, v in BASE.items() if k != "evaluate"})
    train_and_save(recipe, TrainConfig(epochs=4, lr=3e-3, seed=0), out)
    return out


def _recipe(
    tmp_path: Path,
    optimize: dict[str, Any] | None,
    name: str = "r.yaml",
    model: Path | None = None,
) -> Path:
    path = tmp_path / name
    doc = dict(BASE)
    if model is not None:  # a checkpoint: it knows its own kwargs
        doc.pop("model_kwargs")
        doc["model"] = str(model)
    if optimize is not None:
        doc["optimize"] = optimize
    path.write_text(yaml.safe_dump(doc))
    return path


def _journal(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "optimize.json").read_text())
    except (OSError, ValueError):
        return {}


def test_a_killed_search_resumes_without_running_a_finished_node_again(
    mlp: Path, tmp_path: Path
) -> None:
    # exports first (no training), then a pruning whose fine-tuning takes a few seconds
    recipe = _recipe(
        tmp_path,
        {
            "budget": {"max_accuracy_drop": 100.0, "time": "10m"},
            "space": {
                "prune": {"method": "structured", "ratio": [0, 0.5], "finetune_epochs": 25},
                "export": EXPORTS,
            },
        },
        model=mlp,
    )
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    args = [sys.executable, "-m", "modelpress.cli.app", "optimize", str(recipe), "--out", str(out)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own process group: the kill reaches its children too
    )
    try:
        deadline = time.monotonic() + 120
        done: list[dict[str, Any]] = []
        while time.monotonic() < deadline and proc.poll() is None:
            done = [t for t in _journal(out).get("trials", []) if t["status"] == "done"]
            if done:
                break
            time.sleep(0.05)
        assert done, "no trial finished in time"
        assert proc.poll() is None, "the search ended before it could be killed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    at_kill = _journal(out)
    assert at_kill["result"] is None  # killed mid-search
    finished = [t for t in at_kill["trials"] if t["status"] == "done"]
    assert finished and len(finished) < len(at_kill["trials"])

    again = cli("optimize", str(recipe), "--out", str(out), "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    for trial in finished:
        for node in trial["nodes"]:
            said = [ln for ln in again.stdout.splitlines() if f"{node}: finished before" in ln]
            assert said and "reused" in said[0], again.stdout
    record = json.loads((out / "record.json").read_text())
    keys = [s["key"] for s in record["steps"]]
    assert len(keys) == len(set(keys))
    journal = _journal(out)
    assert all(t["status"] == "done" for t in journal["trials"]), journal["trials"]
    assert journal["result"]["recommendation"] is not None
    assert (out / "best-recipe.yaml").is_file()


def test_nothing_feasible_exits_3_and_lists_the_closest(mlp: Path, tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        {"budget": {"max_accuracy_drop": 2.0, "time": "4m"}, "space": {"export": EXPORTS}},
        model=mlp,
    )
    out = tmp_path / "o"
    result = cli("optimize", str(recipe), "--out", str(out), "--max-size-mb", "0.0001")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no candidate meets every constraint; the closest:" in result.stdout
    assert "misses max_size_mb" in result.stdout
    journal = _journal(out)
    assert journal["settings"]["targets"]["max_size_mb"] == 0.0001  # the flag over the recipe
    closest = journal["result"]["least_violating"]
    assert closest and all(any("max_size_mb" in m for m in c["misses"]) for c in closest)
    assert journal["result"]["recommendation"] is None
    assert not (out / "best-recipe.yaml").exists()
    assert (out / "optimize.html").is_file()


# ---------------------------------------------------------------- bad input: one line, exit 2


def test_a_search_without_an_accuracy_bound_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = cli(
        "optimize",
        "zoo:mlp",
        "--data",
        "builtin:digits",
        "--input-shape",
        "1,1,8,8",
        "--out",
        str(out),
    )
    assert_one_line_error(result, "--max-accuracy-drop", "points")
    assert not (out / "optimize.json").exists()


def test_a_budget_without_a_unit_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = cli(
        "optimize",
        "zoo:mlp",
        "--data",
        "builtin:digits",
        "--input-shape",
        "1,1,8,8",
        "--max-accuracy-drop",
        "1",
        "--budget",
        "20",
        "--out",
        str(out),
    )
    assert_one_line_error(result, "--budget", "'20'", "90s")
    assert not (out / "optimize.json").exists()


def test_a_recipe_without_an_optimize_block_is_refused(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, None)
    result = cli("optimize", str(recipe), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, str(recipe), "no optimize: block")


def test_run_refuses_a_recipe_with_an_optimize_block(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"budget": {"max_accuracy_drop": 1.0}, "space": {"export": EXPORTS}})
    out = tmp_path / "o"
    result = cli("run", str(recipe), "--out", str(out))
    assert_one_line_error(result, "optimize: block", "modelpress optimize")
    assert not (out / "record.json").exists()


def test_an_unknown_space_field_is_refused_with_the_close_name(tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        {"budget": {"max_accuracy_drop": 1.0}, "space": {"prune": {"ration": [0.3]}}},
    )
    out = tmp_path / "o"
    result = cli("optimize", str(recipe), "--out", str(out))
    assert_one_line_error(result, f"{recipe}: optimize.space.prune.ration", "did you mean ratio")
    assert not (out / "optimize.json").exists()
