"""Rich progress bars and event lines for the library's Observer hooks. Messages, step names
and errors go in as Text, never as markup: a `[tflite]` in them is printed, not read as a style."""

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
from rich.text import Text

from modelpress.core.observer import Observer

_STYLE = {
    "ok": "green",
    "degraded": "yellow",
    "collapsed": "red",
    "failed": "red",
    "skipped": "dim",
}


class RichObserver(Observer):
    def __init__(self, console: Console) -> None:
        self.console = console

    def event(self, kind: str, message: str, **fields: Any) -> None:
        if kind == "step-done":
            status = fields.get("status", "")
            colour = _STYLE.get(status, "white")
            seconds = fields.get("seconds", 0)
            line = Text.assemble(
                (f"{status:>8}", colour), f" {fields.get('step')} ({seconds:.1f} s)"
            )
            if fields.get("error"):
                line.append(f" — {fields['error']}")
        elif kind == "step":
            line = Text(f"▶ {message}", style="bold")
        elif kind == "warning":
            line = Text.assemble("  ", ("!", "yellow"), f" {message}")
        elif kind == "epoch":
            line = Text(f"  {message}")
        else:
            line = Text.assemble(("•", "cyan"), f" {message}")
        self.console.print(line, highlight=False)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        if not self.console.is_terminal:  # logs and CI: event lines only, no redraws
            yield lambda n=1, **info: None
            return
        # descriptions and info are data (step names, metrics): not markup
        columns = [SpinnerColumn(), TextColumn("{task.description}", markup=False)]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn("{task.fields[info]}", markup=False), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total, info="")

            def advance(n: int = 1, **info: Any) -> None:
                text = "  ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()
                )
                bar.update(task, advance=n, info=text)

            yield advance
