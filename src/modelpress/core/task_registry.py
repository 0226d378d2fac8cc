"""The task registry: which tasks a recipe may name, and the registered object of each.

Core holds the names (a recipe is validated against them without loading any task); each task
module under ``tasks/`` registers its ``Task`` with ``@register_task`` when imported, and
``tasks.get_task`` imports a built-in one by name on first use (its module is named after
it).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, TypeVar

# The built-in tasks, each in the module of its name (loaded on first use).
BUILTIN_TASKS = ("classification", "binary", "fidelity", "detection")

REGISTRY: dict[str, Any] = {}

T = TypeVar("T", bound=type)


def register_task(cls: T) -> T:
    """Class decorator: ``@register_task`` on a ``Task`` subclass registers one instance of it
    under its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__}.name needs to be a non-empty string (the task's name)")
    REGISTRY[name] = cls()
    return cls


def settings_model(name: str) -> Any:
    """The pydantic model of the settings task ``name`` takes under a recipe's ``task:`` (its
    ``settings`` class attribute), or None for a task without settings or an unknown name. A
    built-in task is imported on first use, as the step registry loads the built-in steps."""
    if name not in REGISTRY and name in BUILTIN_TASKS:
        importlib.import_module(f"modelpress.tasks.{name}")
    task = REGISTRY.get(name)
    return getattr(task, "settings", None)


def task_names() -> list[str]:
    """Every task a recipe may name: the built-in ones, then any registered since."""
    return list(dict.fromkeys([*BUILTIN_TASKS, *REGISTRY]))


def unknown_task_message(name: Any) -> str:
    """What a recipe's ``task:`` (or ``--task``) should be, with the closest name."""
    known = task_names()
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"Input should be a registered task: {', '.join(known)}{hint}"
