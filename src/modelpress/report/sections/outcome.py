"""What the run came to: the training steps' results, the targets, the recommendation and
what to ship for each aim."""

from __future__ import annotations

from typing import Any

from modelpress.report import format as fmt
from modelpress.report.sections.base import Grid, metric_label, metrics_of, primary_key, steps

# The comparison each target makes, by name prefix (max_size_mb → ≤, min_speedup → ≥).
_COMPARATOR = {"max": "≤", "min": "≥"}

_TRAINED = ("distill", "prune", "qat")


def _training_row(step: dict[str, Any], key: str, teacher: Any) -> list[str]:
    art = step.get("artifact") or {}
    details = art.get("details") or {}
    run = details.get("finetune") or details  # prune nests its fine-tune
    what = {
        "distill": f"student {fmt.text(details.get('student'))}",
        "prune": f"{fmt.text(details.get('method'))} {fmt.text(details.get('ratio'))}",
        "qat": "with teacher" if details.get("teacher") else "hard labels",
    }.get(str(step.get("type")), "")
    value = metrics_of(art).get(key)
    before = (details.get("before_finetune") or {}).get(key)  # structured pruning, untuned
    scratch = metrics_of(step.get("scratch") or {}).get(key)
    added = (
        (value - scratch) * 100 if isinstance(value, float | int) and scratch is not None else None
    )
    return [
        f"{step.get('index', '?')}. {fmt.text(step.get('name'))}",
        what,
        fmt.text(run.get("epochs")),
        fmt.text(run.get("best_epoch")),
        fmt.metric(before),
        fmt.metric(value),
        fmt.metric(scratch),
        fmt.delta_pt(added),
        fmt.metric(teacher),
    ]


def training(record: dict[str, Any]) -> Grid | None:
    """Steps that train (distill, prune, qat): epochs, result (for structured pruning also the
    pruned model's before fine-tuning), and for a distillation with ``compare_scratch`` the same
    student trained without a teacher — what the teacher added."""
    trained = [s for s in steps(record) if s.get("type") in _TRAINED and s.get("artifact")]
    if not trained:
        return None
    key = primary_key(record)
    label = metric_label(key)
    grid = Grid(
        "Training steps",
        [
            "step",
            "what",
            "epochs",
            "best epoch",
            f"{label} before training",
            label,
            f"scratch {label}",
            "teacher added",
            f"baseline {label}",
        ],
        numeric={2, 3, 4, 5, 6, 7, 8},
    )
    teacher = metrics_of(record.get("baseline") or {}).get(key)
    grid.rows += [_training_row(s, key, teacher) for s in trained]
    return grid


def targets(record: dict[str, Any]) -> Grid | None:
    """Each target set for the recommended artifact, or None when the recipe set none."""
    results = record.get("targets") or {}
    if not results:
        return None
    grid = Grid("Targets", ["target", "wanted", "measured", "met"], numeric={1, 2})
    for name, result in results.items():
        result = result if isinstance(result, dict) else {}
        comparator = _COMPARATOR.get(name.split("_", 1)[0], "")
        wanted = fmt.sig(result.get("target"))
        wanted = f"{comparator} {wanted}" if comparator and wanted != fmt.MISSING else wanted
        grid.rows.append([name, wanted, fmt.sig(result.get("value")), fmt.check(result.get("met"))])
    return grid


def recommendation(record: dict[str, Any]) -> tuple[str, str] | None:
    """(headline, why) of the recommendation, or None before one is made."""
    rec = record.get("recommendation")
    if not isinstance(rec, dict):
        return None
    where = f" ({rec['artifact']})" if rec.get("artifact") else ""
    if not record.get("targets"):  # nothing to meet: no verdict, no check mark
        return f"{fmt.text(rec.get('name'))}{where} — no targets set", fmt.text(rec.get("why"))
    verdict = "meets every target" if rec.get("met") else "does not meet every target"
    mark = fmt.check(rec.get("met"))
    return f"{fmt.text(rec.get('name'))}{where} — {verdict} {mark}", fmt.text(rec.get("why"))


_AIMS = {
    "fastest": "fastest on this CPU",
    "smallest": "smallest file",
    "closest_accuracy": "closest accuracy",
}


def decisions(record: dict[str, Any]) -> Grid | None:
    """What to ship for each aim (fastest, smallest, most accurate), from the record."""
    found = record.get("decisions") or {}
    if not found:
        return None
    grid = Grid("What to ship", ["aim", "artifact", "why"])
    for key, label in _AIMS.items():
        choice = found.get(key)
        if isinstance(choice, dict):
            grid.rows.append([label, fmt.text(choice.get("artifact")), fmt.text(choice.get("why"))])
    return grid
