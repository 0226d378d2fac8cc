"""record.json → rich tables. Builders only: the CLI is the one place that prints them."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from modelpress.report import sections
from modelpress.report.sections import Grid

STATUS_STYLE = {"ok": "green", "degraded": "yellow", "failed": "red", "skipped": "dim"}
# The progression's headers on two lines, so the table fits a terminal.
_COMPACT_HEADERS = {
    "size MB": "size\nMB",
    "latency ms p50 / p90": "latency ms\np50 / p90",
    "peak mem MB": "peak mem\nMB",
    "verify max |Δ|": "verify\nmax |Δ|",
}


def _table(grid: Grid, *, compact: bool = False) -> Table:
    """Cells go in as Text, so brackets in an error message are never read as rich markup.

    ``compact``: two-line headers and no edge padding, for the wide progression table.
    """
    table = Table(
        title=grid.title,
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=not compact,
    )
    for i, header in enumerate(grid.headers):
        is_notes = header == "notes"
        table.add_column(
            _COMPACT_HEADERS.get(header, header) if compact else header,
            justify="right" if i in grid.numeric else "left",
            # Only notes wrap; a squeezed cell ends in … rather than lose digits silently.
            overflow="fold" if is_notes else "ellipsis",
            no_wrap=not is_notes,
            min_width=20 if is_notes else None,
        )
    status = grid.headers.index("status") if "status" in grid.headers else -1
    for row in grid.rows:
        styles = [STATUS_STYLE.get(c, "") if i == status else "" for i, c in enumerate(row)]
        table.add_row(*(Text(c, style=s) for c, s in zip(row, styles, strict=True)))
    return table


def progression_table(record: dict[str, Any]) -> Table:
    """Baseline and every step, with the same columns as the report's progression table.

    About 170 columns wide before the notes; on a narrower console cells end in "…".
    """
    table = _table(sections.progression(record), compact=True)
    table.caption = f"{sections.RECOMMENDED_MARK} recommended · latency at batch 1"
    return table


def targets_table(record: dict[str, Any]) -> Table | None:
    """Targets of the recommended artifact, or None when the recipe set none."""
    grid = sections.targets(record)
    return _table(grid) if grid else None


def artifact_table(entry: dict[str, Any], task: str) -> Table:
    """One artifact's analysis as a vertical key / value table (``modelpress bench``)."""
    table = Table(
        title=f"{entry.get('name') or 'artifact'}", box=box.SIMPLE_HEAVY, show_header=False
    )
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in sections.artifact_facts(entry, task):
        style = STATUS_STYLE.get(value, "") if key == "status" else ""
        table.add_row(Text(key), Text(value, style=style))
    return table
