"""Tasks: what a model's outputs mean, as registered objects (``Task`` in ``tasks/base.py``).

One module per task (``classification``, ``binary``, ``fidelity``); a module's name is its
task's name, and it registers its task with ``@register_task`` when imported. Nothing outside
``tasks/`` asks which task it is: it asks the task. Importing this package is light (no numpy,
no torch): names are known without loading any task, and ``get_task`` loads one on first use.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any, TypeVar

from modelpress.errors import RecipeError

if TYPE_CHECKING:
    from modelpress.tasks.base import Task

# The built-in tasks, each in the module of its name (loaded on first use).
_BUILTIN_TASKS = ("classification", "binary", "fidelity", "detection")

_REGISTRY: dict[str, Task] = {}

# The task a cascade runs when none is named: ``cascade build`` without --task, a model file
# given to ``modelpress video``, and bundles written before cascades took other tasks (their
# cascade.json names none).
CASCADE_TASK = "binary"

T = TypeVar("T", bound=type)


def register_task(cls: T) -> T:
    """Class decorator: ``@register_task`` on a ``Task`` subclass registers one instance of it
    under its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__}.name needs to be a non-empty string (the task's name)")
    _REGISTRY[name] = cls()
    return cls


def task_names() -> list[str]:
    """Every task a recipe may name: the built-in ones, then any registered since."""
    return list(dict.fromkeys([*_BUILTIN_TASKS, *_REGISTRY]))


def unknown_task_message(name: Any) -> str:
    """What a recipe's ``task:`` (or ``--task``) should be, with the closest name."""
    known = task_names()
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"Input should be a registered task: {', '.join(known)}{hint}"


def find_task(name: Any) -> Task | None:
    """The task registered as ``name`` (loading a built-in one), or None: for readers of a
    record, whose ``task`` may be missing or from a newer modelpress."""
    if not isinstance(name, str):
        return None
    if name not in _REGISTRY and name in _BUILTIN_TASKS:
        importlib.import_module(f"modelpress.tasks.{name}")
    return _REGISTRY.get(name)


def get_task(name: str) -> Task:
    """The task registered as ``name``; a RecipeError naming the known ones otherwise."""
    task = find_task(name)
    if task is None:
        raise RecipeError(f"task '{name}': {unknown_task_message(name)}")
    return task
