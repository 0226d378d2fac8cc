"""Tasks: what a model's outputs mean, as registered objects (``Task`` in ``tasks/base.py``).

One module per task (``classification``, ``binary``, ``fidelity``, ``detection``); a module's
name is its task's name, and it registers its task with ``@register_task`` when imported.
Nothing outside ``tasks/`` asks which task it is: it asks the task. Importing this package is
light (no numpy, no torch): the names live in ``core/task_registry.py`` (a recipe is checked
against them without loading a task), and ``get_task`` loads a task on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelpress.core.task_registry import (
    BUILTIN_TASKS,
    REGISTRY,
    register_task,
    task_names,
    unknown_task_message,
)
from modelpress.errors import RecipeError

if TYPE_CHECKING:
    from modelpress.tasks.base import Task

# The task a cascade runs when none is named: ``cascade build`` without --task, a model file
# given to ``modelpress video``, and bundles written before cascades took other tasks (their
# cascade.json names none).
CASCADE_TASK = "binary"

__all__ = ["find_task", "get_task", "register_task", "task_names", "unknown_task_message"]


def find_task(name: Any) -> Task | None:
    """The task registered as ``name`` (loading a built-in one), or None: for readers of a
    record, whose ``task`` may be missing or from a newer modelpress."""
    if not isinstance(name, str):
        return None
    if name not in REGISTRY and name in BUILTIN_TASKS:
        importlib.import_module(f"modelpress.tasks.{name}")
    return REGISTRY.get(name)


def get_task(name: str) -> Task:
    """The task registered as ``name``; a RecipeError naming the known ones otherwise."""
    task = find_task(name)
    if task is None:
        raise RecipeError(f"task '{name}': {unknown_task_message(name)}")
    return task
