"""Views of a run's record.json: report.md, report.html, plots/*.png and terminal tables.

    from modelpress.report import write_reports
    paths = write_reports(record, Path("runs/NAME"))   # {"report.md": ..., "plots/...": ...}

matplotlib is imported only when plots are drawn, so importing this package stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelpress.core.rundir import write_bytes_atomic, write_text_atomic
from modelpress.report import html, markdown


def write_reports(record: dict[str, Any], root: Path) -> dict[str, Path]:
    """Write report.md, report.html and plots/*.png under ``root``, each atomically.

    Returns {path relative to root: absolute path} for every file written.
    """
    from modelpress.report import plots  # matplotlib: only when a report is written

    root = Path(root)
    written: dict[str, Path] = {}
    pngs = plots.render(record)
    for name, png in pngs.items():
        path = root / "plots" / name
        write_bytes_atomic(path, png)
        written[f"plots/{name}"] = path
    for name, text in (
        ("report.md", markdown.render(record, [f"plots/{n}" for n in pngs])),
        ("report.html", html.render(record, pngs)),
    ):
        write_text_atomic(root / name, text)
        written[name] = root / name
    return written


__all__ = ["write_reports"]
