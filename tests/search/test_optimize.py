"""A search run in-process on a tiny trained MLP (8×8 digits): its journal, its front, its
recommended recipe, the time budget, resume, and a trial that crashes."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe, build_recipe, load_recipe
from modelpress.errors import ResumeError
from modelpress.evaluate.targets import check as check_targets
from modelpress.evaluate.versus_fp32 import set_aside
from modelpress.search import front
from modelpress.search.optimize import (
    BEST_RECIPE,
    JOURNAL,
    OptimizeError,
    Search,
    Settings,
    parse_budget,
)
from modelpress.search.space import check

TARGETS = {"max_accuracy_drop": 2.0}
SPACE = {
    "prune": {"method": "structured", "ratio": [0, 0.5], "finetune_epochs": 2},
    "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
}


class Events(Observer):
    """Every event the search and its runner report, as (kind, message)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def event(self, kind: str, message: str, **fields: Any) -> None:
        self.seen.append((kind, message))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MLP trained a few epochs on the 8×8 digits: a real accuracy to lose."""
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    out = tmp_path_factory.mktemp("mlp") / "mlp.pt"
    recipe = build_recipe(
        {
            "model": "zoo:mlp",
            "model_kwargs": {"hidden": [64]},
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
        }
    )
    train_and_save(recipe, TrainConfig(epochs=4, lr=3e-3, seed=0), out)
    return out


def _recipe(model: Path) -> Recipe:
    return build_recipe(
        {
            "model": str(model),
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
            "evaluate": {"repeats": 5, "warmup": 2, "batch_sizes": [1]},
        }
    )


def _search(
    model: Path,
    out: Path,
    space: dict[str, Any] = SPACE,
    *,
    resume: bool = False,
    observer: Observer | None = None,
    on_trial: Callable[..., None] | None = None,
    clock: Callable[[], float] | None = None,
    targets: dict[str, float] = TARGETS,
) -> dict[str, Any]:
    settings = Settings(dict(targets), check(space), time_s=240.0)
    extra = {"clock": clock} if clock else {}
    search = Search(
        _recipe(model),
        settings,
        out,
        resume=resume,
        observer=observer,
        on_trial=on_trial,
        **extra,
    )
    return search.run()


def _read(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    journal = json.loads((out / JOURNAL).read_text())
    record = json.loads((out / "record.json").read_text())
    return journal, record


@pytest.fixture(scope="module")
def searched(mlp: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("search") / "o"
    return out, _search(mlp, out)


# ---------------------------------------------------------------- parse_budget


def test_parse_budget_reads_seconds_minutes_hours() -> None:
    assert parse_budget("90s") == 90
    assert parse_budget("20m") == 1200
    assert parse_budget("1h30m") == 5400
    assert parse_budget("1h") == 3600
    assert parse_budget(None) is None


@pytest.mark.parametrize("bad", ["20", "twenty minutes", "5x", "0m", ""])
def test_parse_budget_refuses_text_without_a_unit_or_a_duration(bad: str) -> None:
    with pytest.raises(OptimizeError, match="--budget"):
        parse_budget(bad)


def test_parse_budget_refuses_a_bare_number_naming_the_field() -> None:
    with pytest.raises(OptimizeError, match=r"budget\.time: 20: give a unit"):
        parse_budget(20, "budget.time")


# ---------------------------------------------------------------- a whole search


def test_the_journal_records_every_trial(searched: tuple[Path, dict[str, Any]]) -> None:
    out, result = searched
    journal, record = _read(out)
    assert journal["result"] == result
    assert journal["settings"]["space"] == check(SPACE)
    # (no prune, 0.5) × (fp32, int8): four pipelines, all built
    trials = journal["trials"]
    assert [t["index"] for t in trials] == [1, 2, 3, 4]
    assert all(t["status"] == "done" and not t["reused"] for t in trials), trials
    built = {s["id"]: s for s in record["steps"]}
    for t in trials:
        assert set(t["nodes"]) <= set(built)
        assert built[t["id"]]["artifact"]["name"] == t["candidate"]
    # the shared nodes (the FP32 ONNX before an int8 one, the pruned model) built once
    assert len(built) == len(record["steps"]) == len({n for t in trials for n in t["nodes"]})
    assert (out / "optimize.html").is_file()


def test_the_front_is_the_feasible_candidates_no_other_dominates(
    searched: tuple[Path, dict[str, Any]],
) -> None:
    out, result = searched
    journal, record = _read(out)
    entries = [record["baseline"], *(a for a in record["artifacts"] if a["status"] == "ok")]
    feasible = {}
    for e in entries:
        p = front.point(e)
        if p is not None and all(r["met"] for r in check_targets(e, TARGETS).values()):
            feasible[e["name"]] = [p[k] for k in front.OBJECTIVES]
    assert feasible
    # timed side by side slower than an FP32 sibling that is feasible too: off the front
    aside = {e["name"] for e in set_aside([e for e in entries if e["name"] in feasible])}
    kept = {n: p for n, p in feasible.items() if n not in aside}
    expected = {n for n, p in kept.items() if not any(front.dominates(q, p) for q in kept.values())}
    on_front = {f["name"] for f in result["front"]}
    assert result["front"] and on_front == expected
    assert result["feasible"] == len(feasible)
    for f in result["front"]:
        assert f["loss_pt"] <= TARGETS["max_accuracy_drop"]
    flagged = {t["candidate"] for t in journal["trials"] if t["on_front"]}
    assert flagged <= on_front


def test_the_recommended_recipe_reproduces_the_candidate(
    searched: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from modelpress.engine import pipeline

    out, result = searched
    journal, record = _read(out)
    rec = result["recommendation"]
    assert rec is not None and rec["recipe"] == str(out / BEST_RECIPE)
    assert Path(rec["recipe"]).is_file()
    recipe = load_recipe(Path(rec["recipe"]))
    assert recipe.optimize is None and recipe.targets.max_accuracy_drop == 2.0
    # the recipe's steps are the candidate's lineage, in order
    trial = next((t for t in journal["trials"] if t["candidate"] == rec["name"]), None)
    nodes = trial["nodes"] if trial else []
    assert [s.ref for s in recipe.steps] == nodes
    again = pipeline.run(recipe, out=tmp_path / "again")
    if nodes:
        built = next(s for s in again["steps"] if s["id"] == nodes[-1])["artifact"]
        searched_entry = next(a for a in record["artifacts"] if a["name"] == rec["name"])
    else:  # the baseline itself was the pick
        built, searched_entry = again["baseline"], record["baseline"]
    assert built["metrics"]["top1"] == searched_entry["metrics"]["top1"]
    assert built["size_bytes"] == searched_entry["size_bytes"]


def test_resume_reuses_every_node(
    mlp: Path, searched: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = searched
    again = tmp_path / "o"
    shutil.copytree(out, again)
    _, record_before = _read(again)
    events = Events()
    _search(mlp, again, resume=True, observer=events)
    journal, record = _read(again)
    assert all(t["status"] == "done" and t["reused"] for t in journal["trials"]), journal
    assert sorted(s["key"] for s in record["steps"]) == sorted(
        s["key"] for s in record_before["steps"]
    )
    assert all(s["reused"] for s in record["steps"])
    said = [m for kind, m in events.seen if kind == "resume"]
    for s in record["steps"]:
        assert any(m.startswith(f"{s['id']}: finished before") for m in said), said
    assert not [m for kind, m in events.seen if kind == "step"]  # nothing ran again
    # the same measurements come back (the side-by-side races at the end are timed again, so
    # which artifacts they set aside, and the front, may differ within timing noise)
    before_journal = json.loads((out / JOURNAL).read_text())
    assert [t["point"] for t in journal["trials"]] == [t["point"] for t in before_journal["trials"]]


def test_an_existing_search_is_kept_unless_resumed_or_forced(
    mlp: Path, searched: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "o"
    shutil.copytree(searched[0], out)
    before = (out / JOURNAL).read_text()
    with pytest.raises(ResumeError, match="already holds a search"):
        _search(mlp, out)
    other = {"export": {"format": ["onnx"], "precision": ["fp16"]}}
    with pytest.raises(ResumeError, match="another space"):
        _search(mlp, out, other, resume=True)
    assert (out / JOURNAL).read_text() == before


# ---------------------------------------------------------------- the time budget


def test_trials_past_the_budget_are_skipped_unbuilt(mlp: Path, tmp_path: Path) -> None:
    """A clock that jumps 1000 s after the first trial: the others no longer fit. The fake clock
    starts at 0, far from time.monotonic(): the first trial's fine-tuning must still run its
    two epochs (the trainer's deadline was compared with time.monotonic() unconverted)."""
    now = [0.0]

    def later(trial: Any, total: int) -> None:
        now[0] += 1000.0

    space = {
        "prune": {"method": "structured", "ratio": [0.5], "finetune_epochs": 2},
        "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
    }
    out = tmp_path / "o"
    result = _search(mlp, out, space, on_trial=later, clock=lambda: now[0])
    journal, record = _read(out)
    first, second = journal["trials"]
    assert first["status"] == "done", first["reason"]
    assert second["status"] == "skipped"
    assert "would not fit the time left" in second["reason"]
    built = {s["id"] for s in record["steps"]}
    assert set(first["nodes"]) <= built
    assert not (set(second["nodes"]) - set(first["nodes"])) & built
    assert result["recommendation"] is not None


# ---------------------------------------------------------------- the size bound


def test_exports_that_cannot_meet_the_size_bound_are_skipped_unbuilt(
    mlp: Path, tmp_path: Path
) -> None:
    """No export of a 20 KB model fits in 100 bytes: neither the FP32 ONNX nor the int8 one
    (whose FP32 parent, skipped, is not built for it either) is built."""
    space = {"export": {"format": ["onnx"], "precision": ["fp32", "int8"]}}
    out = tmp_path / "o"
    targets = {**TARGETS, "max_size_mb": 0.0001}
    result = _search(mlp, out, space, targets=targets)
    journal, record = _read(out)
    for trial in journal["trials"]:
        assert trial["status"] == "skipped", trial
        assert trial["reason"].startswith("cannot meet max_size_mb 0.0001: about 0.0")
    assert record["steps"] == []
    assert result["recommendation"] is None
    assert [c["name"] for c in result["least_violating"]] == ["baseline"]
    assert result["least_violating"][0]["misses"][0].startswith("max_size_mb 0.0")
    assert not (out / BEST_RECIPE).exists()


# ---------------------------------------------------------------- a failing trial


def test_a_crashing_trial_is_recorded_failed_and_the_search_goes_on(
    mlp: Path, tmp_path: Path
) -> None:
    space = {
        "distill": {"student": ["none", "zoo:does_not_exist"], "epochs": 1},
        "export": {"format": ["onnx"], "precision": ["fp32"]},
    }
    out = tmp_path / "o"
    result = _search(mlp, out, space)
    journal, record = _read(out)
    done, failed = journal["trials"]
    assert done["status"] == "done" and done["pipeline"] == "export(format=onnx, precision=fp32)"
    assert failed["status"] == "failed"
    assert failed["reason"].startswith(failed["nodes"][0] + ": ")
    assert "does_not_exist" in failed["reason"]
    assert journal["result"] == result and result["recommendation"] is not None
    # the export after the failed distillation was never built
    assert failed["nodes"][-1] not in {s["id"] for s in record["steps"]}


def test_a_run_that_is_not_a_search_is_never_overwritten(mlp: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "record.json").write_text('{"schema": 2, "steps": []}')
    with pytest.raises(ResumeError, match="holds a run that is not a search"):
        _search(mlp, out)
    assert (out / "record.json").read_text() == '{"schema": 2, "steps": []}'


def test_a_collapsed_node_ends_its_trial_and_the_search_builds_nothing_on_it(
    mlp: Path, tmp_path: Path
) -> None:
    """97 % of the weights zeroed, no fine-tune: the pruned MLP is at chance. It is measured
    and recorded collapsed; its trial fails saying so, the exports after it are never built,
    and it is neither on the front nor recommended."""
    space = {
        "prune": {"method": "l1-unstructured", "ratio": [0.97], "finetune_epochs": 0},
        "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
    }
    out = tmp_path / "o"
    result = _search(mlp, out, space)
    journal, record = _read(out)

    first, second = journal["trials"]
    pruned = first["nodes"][0]
    assert first["status"] == "failed"
    assert first["reason"].startswith(f"{pruned}: collapsed: top1 at chance level; top1 0.")
    assert second["status"] == "skipped"
    assert second["reason"] == f"starts from {pruned}, which collapsed"
    steps = {s["id"]: s for s in record["steps"]}
    assert set(steps) == {pruned} and steps[pruned]["status"] == "collapsed"
    assert [f["name"] for f in result["front"]] == ["baseline"]
    assert result["recommendation"]["name"] == "baseline"
