"""The run record's typed schema: what ``record.json`` holds, as pydantic models.

Every record a run writes is validated against it (``RunDir.write_record``), so a field read
by key somewhere keeps the type written here; the Python API returns it (``modelpress.compress``).
Fields not declared here are kept as they are (``extra="allow"``): a record may carry more
than the schema names, never less or of another type.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Latency(_Open):
    """One timing of an artifact at one batch size, in milliseconds per call."""

    median: float
    p90: float | None = None
    mean: float | None = None
    min: float | None = None
    batch: int | None = None
    threads: int | None = None
    repeats: int | None = None
    unreliable: list[str] = Field(default_factory=list)


class ArtifactRecord(_Open):
    """One artifact (the baseline or a step's): what it is, how it measured, how it did."""

    name: str
    format: str | None = None
    precision: str | None = None
    runtime: str | None = None
    path: str | None = None
    parent: str | None = None
    step: str | None = None
    status: str | None = None
    error: str | None = None
    size_bytes: int | None = None
    params: int | None = None
    macs: int | None = None
    latency_ms: Latency | None = None
    throughput_per_s: float | None = None
    peak_memory_mb: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    verification: dict[str, Any] | None = None
    speedup: float | None = None
    size_ratio: float | None = None
    metric_delta_pt: float | None = None
    notes: list[Any] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / 1e6

    @property
    def latency_p50_ms(self) -> float | None:
        return None if self.latency_ms is None else self.latency_ms.median


class RunRecord(_Open):
    """A run's record: the baseline, every artifact, the recommendation."""

    schema_version: int = Field(alias="schema")
    name: str | None = None
    created: str | None = None
    task: str | None = None
    primary_metric: str | None = None
    model: Any = None
    baseline: ArtifactRecord | None = None
    artifacts: list[ArtifactRecord] = Field(default_factory=list)
    recommendation: Any = None

    def artifact(self, name: str) -> ArtifactRecord:
        """The artifact called ``name`` (``baseline`` included); KeyError naming the others."""
        every = ([self.baseline] if self.baseline else []) + self.artifacts
        for a in every:
            if a.name == name:
                return a
        raise KeyError(f"no artifact '{name}'; the run has: {', '.join(a.name for a in every)}")


def check_record(record: dict[str, Any]) -> RunRecord:
    """``record`` validated against the schema (pydantic's ValidationError when a field has
    another type than the schema says)."""
    return RunRecord.model_validate(record)
