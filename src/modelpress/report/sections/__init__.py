"""The report's content as plain strings, read from a record once for every view.

Markdown, HTML and the terminal only lay these out, so a number reads the same everywhere.
Every accessor tolerates a partial record (a run still going, a failed baseline, null fields).

    base.py         Grid, Note, marks, record access, title and summary
    progression.py  one row per artifact; techniques compared
    outcome.py      training steps, targets, recommendation, what to ship
    timing.py       busy-machine warnings, head-to-head, quantized vs FP32
    int8.py         INT8 accuracy fallback and coverage
    details.py      every metric, per-class accuracy, notes, environment, one artifact's facts
    tasks.py        sections a task contributes (``Task.report_sections``): ``task_sections``
    detection.py    the detection task's benchmark table
"""

from __future__ import annotations

from modelpress.report.sections import detection  # noqa: F401  (registers its section)
from modelpress.report.sections.base import (
    RECOMMENDED_MARK,
    SLOWER_MARK,
    UNRELIABLE_MARK,
    Entry,
    Grid,
    Note,
    entries,
    entry_label,
    latency_at,
    metric_cell,
    metric_label,
    metrics_of,
    primary_key,
    recommended,
    steps,
    summary,
    title,
)
from modelpress.report.sections.details import (
    artifact_facts,
    environment,
    fixed_batch_note,
    metrics,
    notes,
    own_process_fact,
    packages,
    per_class,
    scalar_metrics,
)
from modelpress.report.sections.int8 import COVERAGE_HEADERS, coverage, coverage_summary, fallback
from modelpress.report.sections.outcome import decisions, recommendation, targets, training
from modelpress.report.sections.progression import (
    PROGRESSION_HEADERS,
    TECHNIQUE_HEADERS,
    best_techniques,
    memory_legend,
    own_process_mb,
    progression,
    techniques,
)
from modelpress.report.sections.tasks import TaskSection, task_section, task_sections
from modelpress.report.sections.timing import head_to_head, unreliable, versus_fp32

__all__ = [
    "COVERAGE_HEADERS",
    "PROGRESSION_HEADERS",
    "RECOMMENDED_MARK",
    "SLOWER_MARK",
    "TECHNIQUE_HEADERS",
    "UNRELIABLE_MARK",
    "Entry",
    "Grid",
    "Note",
    "TaskSection",
    "artifact_facts",
    "best_techniques",
    "coverage",
    "coverage_summary",
    "decisions",
    "entries",
    "entry_label",
    "environment",
    "fallback",
    "fixed_batch_note",
    "head_to_head",
    "latency_at",
    "memory_legend",
    "metric_cell",
    "metric_label",
    "metrics",
    "metrics_of",
    "notes",
    "own_process_fact",
    "own_process_mb",
    "packages",
    "per_class",
    "primary_key",
    "progression",
    "recommendation",
    "recommended",
    "scalar_metrics",
    "steps",
    "summary",
    "targets",
    "task_section",
    "task_sections",
    "techniques",
    "title",
    "training",
    "unreliable",
    "versus_fp32",
]
