"""``modelpress zoo`` and ``modelpress steps``: what a recipe can name (architectures, step
types with their keys)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelpress.cli.common import app, console, user_errors
from modelpress.errors import ModelpressError


def zoo() -> None:
    """List the reference architectures (our own code; no downloads)."""
    from rich.table import Table

    from modelpress import zoo as zoo_mod

    table = Table(
        title="modelpress zoo",
        caption="arguments go in --model-kwargs / model_kwargs; num_classes and in_channels "
        "come from the data; input_size=N runs an image model at N×N whatever the data's size",
    )
    for col in ("name", "input", "default shape", "arguments", "description"):
        table.add_column(col)
    for entry in zoo_mod.list_models():
        table.add_row(
            entry.name,
            entry.input_kind,
            ",".join(map(str, entry.default_input_shape)),
            ", ".join(zoo_mod.arguments(entry) or ["any"]),
            entry.description,
        )
    console.print(table)


def steps(
    step_type: Annotated[
        str | None, typer.Argument(help="One step type (default: all of them).")
    ] = None,
) -> None:
    """List the step types a recipe's steps can use, with every key, its type and default."""
    from rich.table import Table
    from rich.text import Text

    from modelpress.core.registry import describe_fields, step_types, unknown_type_message

    types = step_types()
    if step_type is not None and step_type not in types:
        raise ModelpressError(unknown_type_message(step_type))
    for name, cls in types.items():
        if step_type not in (None, name):
            continue
        for what, variant in cls.variants().items():  # export: one table per format
            title = f"type: {name}" + (f", {what}" if what else "")
            table = Table(title=title, title_justify="left")
            for col in ("key", "type", "default"):
                table.add_column(col)
            for row in describe_fields(variant):
                table.add_row(*map(Text, row))  # list[str] is not rich markup
            console.print(table)


def register() -> None:
    app.command()(user_errors(zoo))
    app.command()(user_errors(steps))
