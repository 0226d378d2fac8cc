"""Rich progress bars and event lines for the library's Observer hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from modelpress.core.observer import Observer

_STYLE = {"ok": "green", "degraded": "yellow", "failed": "red", "skipped": "dim"}


class RichObserver(Observer):
    def __init__(self, console: Console) -> None:
        self.console = console

    def event(self, kind: str, message: str, **fields: Any) -> None:
        if kind == "step-done":
            status = fields.get("status", "")
            colour = _STYLE.get(status, "white")
            seconds = fields.get("seconds", 0)
            line = f"[{colour}]{status:>8}[/] {fields.get('step')} ({seconds:.1f} s)"
            if fields.get("error"):
                line += f" — {fields['error']}"
            self.console.print(line, highlight=False)
        elif kind == "step":
            self.console.print(f"[bold]▶ {message}[/]", highlight=False)
        elif kind == "warning":
            self.console.print(f"  [yellow]![/] {message}", highlight=False)
        elif kind == "epoch":
            self.console.print(f"  {message}", highlight=False)
        else:
            self.console.print(f"[cyan]•[/] {message}", highlight=False)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        if not self.console.is_terminal:  # logs and CI: event lines only, no redraws
            yield lambda n=1, **info: None
            return
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total, info="")

            def advance(n: int = 1, **info: Any) -> None:
                text = "  ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()
                )
                bar.update(task, advance=n, info=text)

            yield advance
