"""record.json → rich tables. Builders only: the CLI is the one place that prints them.

Every text a table holds (title, headers, cells, caption) goes in as Text: an error's
`[tflite]` or a name's brackets are printed as written, never read as rich markup, whatever
console prints the table."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from modelpress.report import sections
from modelpress.report.sections import Grid

STATUS_STYLE = {
    "ok": "green",
    "degraded": "yellow",
    "collapsed": "red",
    "failed": "red",
    "skipped": "dim",
}
# The progression's headers on two lines, so the table fits a terminal.
_COMPACT_HEADERS = {
    "size MB": "size\nMB",
    "latency ms p50 / p90": "latency ms\np50 / p90",
    "peak MB (own process)": "peak MB\nown proc.",
    "verify max |Δ|": "verify\nmax |Δ|",
}


def _title(text: str) -> Text:
    return Text(text, style="table.title")  # the style rich gives a str title


def _caption(text: str) -> Text:
    return Text(text, style="table.caption")


def _table(grid: Grid, *, compact: bool = False) -> Table:
    """``compact``: two-line headers and no edge padding, for the wide progression table."""
    table = Table(
        title=_title(grid.title),
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=not compact,
    )
    for i, header in enumerate(grid.headers):
        is_notes = header == "notes"
        table.add_column(
            Text(_COMPACT_HEADERS.get(header, header) if compact else header),
            justify="right" if i in grid.numeric else "left",
            # One line per row; a squeezed cell ends in … rather than lose digits silently.
            # The full notes are in report.md.
            overflow="ellipsis",
            no_wrap=True,
            min_width=20 if is_notes else None,
            max_width=48 if is_notes else None,
        )
    status = grid.headers.index("status") if "status" in grid.headers else -1
    for row in grid.rows:
        styles = [STATUS_STYLE.get(c, "") if i == status else "" for i, c in enumerate(row)]
        table.add_row(*(Text(c, style=s) for c, s in zip(row, styles, strict=True)))
    return table


# Left out of the terminal's progression (report.md has every column): it must fit a terminal.
# Peak memory in modelpress's process (torch and every runtime loaded) gives way to the
# artifact's own-process figure, the one a device's budget compares with.
_TERMINAL_DROPS = ("params", "MACs", "throughput/s", "peak MB (measuring)", "verify max |Δ|")


def _without(grid: Grid, drop: tuple[str, ...]) -> Grid:
    keep = [i for i, h in enumerate(grid.headers) if h not in drop]
    numeric = {keep.index(i) for i in grid.numeric if i in keep}
    out = Grid(grid.title, [grid.headers[i] for i in keep], numeric=numeric)
    out.rows = [[row[i] for i in keep] for row in grid.rows]
    return out


def progression_table(record: dict[str, Any]) -> Table:
    """Baseline and every step: the report's progression without the columns a terminal cannot
    fit (params, MACs, throughput, peak memory in modelpress's process, max |Δ|; all in
    report.md)."""
    table = _table(_without(sections.progression(record), _TERMINAL_DROPS), compact=True)
    caption = f"{sections.RECOMMENDED_MARK} recommended · latency at batch 1"
    busy = sections.unreliable(record)
    if busy:
        caption += f" · {sections.UNRELIABLE_MARK} timings unreliable (busy machine):\n"
        caption += "\n".join(busy)
    table.caption = _caption(caption)
    return table


def techniques_table(record: dict[str, Any]) -> Table | None:
    """Each technique alone on the baseline, the best for size, speed and accuracy named."""
    grid = sections.techniques(record)
    if grid is None:
        return None
    table = _table(_without(grid, ("throughput/s",)), compact=True)
    table.caption = Text(sections.best_techniques(record) or "")
    return table


def head_to_head_table(record: dict[str, Any]) -> Table | None:
    """The finalists timed in turn at the end of the run, or None when there was no race."""
    race = sections.head_to_head(record)
    if race is None:
        return None
    text, grid = race
    if grid is None:  # it failed: say why, in full
        table = _table(Grid("Head-to-head", ["head-to-head"], [[text]]))
        table.columns[0].no_wrap, table.columns[0].overflow = False, "fold"
        return table
    table = _table(grid)
    table.caption = _caption(text)
    return table


def versus_fp32_table(record: dict[str, Any]) -> Table | None:
    """Each quantized artifact timed in turn with its FP32 sibling, or None when none ran."""
    found = sections.versus_fp32(record)
    if found is None:
        return None
    text, grid = found
    table = _table(grid)
    for column in table.columns[-2:]:  # the verdict and why not to trust it: wrap, never cut
        column.no_wrap, column.overflow = False, "fold"
    table.caption = _caption(text)
    return table


def fallback_table(record: dict[str, Any]) -> Table | None:
    """INT8 artifacts' accuracy fallback (layers kept FP32), or None when none ran one."""
    grid = sections.fallback(record)
    if grid is None:
        return None
    table = _table(grid)
    # the kept layers are the point of this table: let them wrap rather than end in …
    table.columns[-1].no_wrap, table.columns[-1].overflow = False, "fold"
    return table


def task_tables(record: dict[str, Any]) -> list[Table]:
    """The tables the record's task contributes (``Task.report_sections``), with legends."""
    tables = []
    for section in sections.task_sections(record):
        table = _table(section.grid, compact=True)
        if section.legend:
            table.caption = _caption(section.legend)
        tables.append(table)
    return tables


def coverage_table(record: dict[str, Any]) -> Table | None:
    """INT8 artifacts' coverage, short: int8 ops, MAC and time shares, float op types."""
    grid = sections.coverage(record)
    if grid is None:
        return None
    table = _table(_without(grid, ("Q / DQ",)))
    table.columns[-2].no_wrap, table.columns[-2].overflow = False, "fold"  # the float op types
    table.columns[-1].no_wrap, table.columns[-1].overflow = False, "fold"
    return table


def training_table(record: dict[str, Any]) -> Table | None:
    """Distill / prune / QAT steps with the scratch comparison, or None when none trained."""
    grid = sections.training(record)
    return _table(grid) if grid else None


def targets_table(record: dict[str, Any]) -> Table | None:
    """Targets of the recommended artifact, or None when the recipe set none."""
    grid = sections.targets(record)
    return _table(grid) if grid else None


def artifact_table(entry: dict[str, Any], task: str) -> Table:
    """One artifact's analysis as a vertical key / value table (``modelpress bench``)."""
    table = Table(
        title=_title(str(entry.get("name") or "artifact")), box=box.SIMPLE_HEAVY, show_header=False
    )
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in sections.artifact_facts(entry, task):
        style = STATUS_STYLE.get(value, "") if key == "status" else ""
        table.add_row(Text(key), Text(value, style=style))
    return table
