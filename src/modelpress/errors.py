"""User-facing errors: each one is a single line naming the thing at fault and the fix.

The CLI prints these without a traceback (``--debug`` shows one); anything else that escapes is
a bug in modelpress, reported as such.
"""

from __future__ import annotations


class ModelpressError(Exception):
    """Base class: the message is one line a user can act on."""


class RecipeError(ModelpressError):
    """The recipe (or a CLI flag that builds one) is invalid."""


class ModelSourceError(ModelpressError):
    """A model, factory or weights file cannot be loaded as asked."""


class DataSourceError(ModelpressError):
    """A data source cannot be read, or does not fit the model."""


class ResumeError(ModelpressError):
    """``--resume`` was asked on a run directory that belongs to another recipe."""


class OutputPathError(ModelpressError):
    """An output path (``--out``, ``--json``, ``--save-recipe``) cannot be written as asked."""


class StepError(ModelpressError):
    """A step could not do its work; the pipeline records it as failed and goes on."""


class RuntimeUnavailableError(ModelpressError):
    """An artifact's runtime (or an optional extra) is missing."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first non-empty line`` of an exception from a library, for one-line messages."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0].strip() if lines else ''}".rstrip(": ")[:limit]
