"""Sections a task contributes to the report: each task names its own in
``Task.report_sections``; the functions that build them register here under those names.

Markdown, HTML and the terminal lay out ``task_sections(record)`` after the INT8 fallback table
without knowing which task brought what, so a new task's table needs no change to a writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelpress.report.sections.base import Grid
from modelpress.tasks import find_task


@dataclass(frozen=True)
class TaskSection:
    """A task's table and the legend printed under it ("" for none)."""

    grid: Grid
    legend: str = ""


SectionFn = Callable[[dict[str, Any]], TaskSection | None]
_SECTIONS: dict[str, SectionFn] = {}


def task_section(name: str) -> Callable[[SectionFn], SectionFn]:
    """Register the function that builds the section a task names ``name``."""

    def register(fn: SectionFn) -> SectionFn:
        _SECTIONS[name] = fn
        return fn

    return register


def registered_sections() -> tuple[str, ...]:
    return tuple(_SECTIONS)


def task_sections(record: dict[str, Any]) -> list[TaskSection]:
    """The sections the record's task contributes, in the order it names them, each one that
    has rows (none for a record of an unknown task)."""
    task = find_task(record.get("task"))
    found = []
    for name in task.report_sections if task else ():
        build = _SECTIONS.get(name)
        if build is None:  # a task naming a section this report lacks: a bug, said plainly
            raise KeyError(f"task {task.name} names report section {name!r}, which is not built")
        section = build(record)
        if section is not None:
            found.append(section)
    return found
