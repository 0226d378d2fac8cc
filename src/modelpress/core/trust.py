"""Which code a modelpress checkpoint may choose to run when it rebuilds its model.

A checkpoint records the source its model was built from (``metadata["model"]``). A ``zoo:``
model is modelpress's own code, so a checkpoint may name one freely. A ``module:factory`` or
``file.py:factory`` is code from elsewhere: a file handed over must not pick it (a checkpoint
naming ``subprocess:getoutput`` with ``{"cmd": ...}`` would run a shell command). Such a factory
runs only when the user named the same factory (recipe ``model``, a step's ``teacher`` or
``student``, on the command line as MODEL, --teacher, --student) or allowed checkpoint code
outright (``trust_checkpoint_code: true``, ``--trust-checkpoint-code``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Sources that are files holding a model (never a factory, whatever they contain).
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ts", ".pt2", ".onnx", ".tflite")


def factory_key(source: str) -> str | None:
    """``source`` normalised when it names a factory (``file.py`` made absolute as it would be
    imported from here), else None (zoo models, model files, anything else)."""
    if source.startswith("zoo:") or source.endswith(MODEL_FILE_SUFFIXES) or ":" not in source:
        return None
    target, _, attr = source.rpartition(":")
    if target.endswith(".py"):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return source


@dataclass(frozen=True)
class CodeTrust:
    """The factories a checkpoint may name: those the user named, or any with ``any_factory``."""

    factories: frozenset[str] = frozenset()
    any_factory: bool = False

    @classmethod
    def naming(cls, sources: Iterable[str], any_factory: bool = False) -> CodeTrust:
        keys = (factory_key(s) for s in sources)
        return cls(frozenset(k for k in keys if k is not None), any_factory)

    def allows(self, factory: str) -> bool:
        return self.any_factory or factory_key(factory) in self.factories
