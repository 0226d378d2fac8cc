"""The search's journal (optimize.json): its settings, every trial as it ends, the
conclusion; read again on --resume."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelpress.core.rundir import write_json_atomic
from modelpress.errors import ResumeError, first_line
from modelpress.search.space import Pipeline

JOURNAL = "optimize.json"
BEST_RECIPE = "best-recipe.yaml"


def read_journal(path: Path) -> dict[str, Any] | None:
    """The search's journal, or None; a damaged one is a one-line error."""
    import json

    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ResumeError(
            f"{path}: not a readable search journal ({first_line(e)}); drop --resume and pass "
            "--force to start over"
        ) from None
    return doc if isinstance(doc, dict) else None


@dataclass
class Settings:
    targets: dict[str, float | None]
    space: dict[str, dict[str, list[Any]]]
    time_s: float | None = None
    max_trials: int | None = None
    prefer: list[str] = field(default_factory=lambda: ["latency_ms", "size_mb"])
    workers: int = 1  # above 1, or with ray_address: trials on Ray
    ray_address: str | None = None
    coarse: int | None = None  # validation samples of the first pass (None: all, one pass)

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "space": self.space,
            "time_s": self.time_s,
            "max_trials": self.max_trials,
            "prefer": self.prefer,
            "workers": self.workers,
            "ray_address": self.ray_address,
            "coarse": self.coarse,
        }


@dataclass
class Trial:
    index: int
    pipeline: Pipeline
    status: str = "pending"  # done | failed | skipped
    reason: str = ""
    seconds: float = 0.0
    reused: bool = False
    candidate: str | None = None
    point: dict[str, float] | None = None
    feasible: bool = False
    misses: list[str] = field(default_factory=list)
    on_front: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.pipeline.id,
            "pipeline": self.pipeline.describe(),
            "nodes": [n.id for n in self.pipeline.nodes],
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "reused": self.reused,
            "candidate": self.candidate,
            "point": self.point,
            "feasible": self.feasible,
            "misses": self.misses,
            "on_front": self.on_front,
        }


class JournalMixin:
    """``Search``: the journal written after every trial."""

    def _write(
        self, runner: Any, started: float, note: str, result: dict[str, Any] | None = None
    ) -> None:
        write_json_atomic(
            self.out / JOURNAL,
            {
                "settings": self.settings.to_dict(),
                "note": note,
                "elapsed_s": round(self.clock() - started, 1),
                "trials": [t.to_dict() for t in self.trials],
                "result": result,
            },
        )
