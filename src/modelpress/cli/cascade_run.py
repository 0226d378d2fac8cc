"""``modelpress cascade run BUNDLE INPUTS...``: a built cascade on image files, folders of
images and .npz arrays (``deploy/inputs.py``), one JSON line per item. Registered under
``modelpress cascade`` by ``cli/cascade.py``."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Annotated, Any

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from modelpress.cli.common import Threads, console, user_errors
from modelpress.core.rundir import holding_output


@user_errors
@holding_output("out", folder=False, example="results.jsonl")  # one run writes OUT
def run_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle from modelpress cascade build.")],
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Image files, folders of images (recursive) and .npz arrays."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write one JSON line per item here, and a summary line."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="The data the stages load (default: the data the bundle was built on)."
        ),
    ] = None,
    threads: Threads = None,
) -> None:
    """Run the cascade on new inputs, read as the bundle's data were: each item's decision, its
    probability and the stage that decided."""
    from modelpress.core.rundir import check_output
    from modelpress.deploy.cascade import Cascade
    from modelpress.deploy.inputs import InputsError, resolve

    if out is not None:
        check_output(out, "--out", folder=False, example="results.jsonl")
    plan = resolve(list(inputs))  # a missing path fails before the bundle loads
    cascade = Cascade.load(bundle, data, threads, with_data=False)
    tmp = None if out is None else out.with_name(f".{out.name}.tmp")
    try:
        spec = cascade.inputs or []
        if len(spec) != 1:
            raise InputsError(
                f"{bundle}: the stages take {len(spec)} inputs; cascade run feeds one"
            )
        classes = class_names(cascade.meta)
        names = [s.name for s in cascade.stages]
        if tmp is not None:
            tmp.parent.mkdir(parents=True, exist_ok=True)
        with _open(tmp) as sink:
            per_stage, decisions, seconds = _run(cascade, plan, spec[0], classes, names, sink)
            if not plan.read:
                raise InputsError(
                    f"none of the {len(plan.skipped)} inputs could be read: "
                    f"{plan.skipped_line()}; give images Pillow can read"
                )
            summary = {
                "type": "summary",
                "items": plan.read,
                "skipped": len(plan.skipped),
                "per_stage": per_stage,
                "decisions": decisions,
                "ms_per_item": 1000 * seconds / plan.read,
            }
            if sink is not None:
                sink.write(json.dumps(summary) + "\n")
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        cascade.close()
    if tmp is not None and out is not None:
        tmp.replace(out)
    _show(summary, names, plan)
    if out is not None:
        console.print(Text(f"wrote {out}"))


def class_names(meta: dict[str, Any]) -> list[str]:
    """The name of each decision, as the bundle's task names them (``classes`` from
    cascade.json; a binary cascade's decision 1 is its positive class, which
    ``positive_index`` may put first; negative / positive where it keeps no names)."""
    from modelpress.deploy.exits import cascade_task

    return cascade_task(meta.get("task"), where="cascade.json")[1].class_names(meta)


def _open(tmp: Path | None) -> Any:
    return nullcontext(None) if tmp is None else tmp.open("w")


def _run(
    cascade: Any,
    plan: Any,
    spec: Any,
    classes: list[str],
    names: list[str],
    sink: IO[str] | None,
) -> tuple[list[int], dict[str, int], float]:
    """Every batch through ``cascade.predict``: (items per stage, items per class, seconds in
    the cascade). Works for a decision that is a class index and p its probability."""
    from modelpress.deploy.evaluation import once

    cascade.warm_up()  # untimed: each stage's first run
    per_stage = [0] * len(names)
    counts: Counter[str] = Counter({c: 0 for c in classes})
    seconds = 0.0
    for batch in plan.batches(tuple(spec.shape[1:]), spec.dtype):
        took, routed = once(lambda batch=batch: cascade.predict([batch.x]))
        seconds += took
        for item, p, decision, stage in zip(
            batch.ids,
            np.asarray(routed.p).tolist(),
            np.asarray(routed.decision).tolist(),
            np.asarray(routed.stage).tolist(),
            strict=True,
        ):
            name = classes[decision] if 0 <= decision < len(classes) else str(decision)
            per_stage[stage] += 1
            counts[name] += 1
            if sink is not None:
                line = {
                    "type": "item",
                    "input": item,
                    "decision": int(decision),
                    "class": name,
                    "p": float(p),
                    "stage": int(stage),
                    "stage_name": names[stage],
                }
                sink.write(json.dumps(line) + "\n")
    if sink is not None:
        for item, why in plan.skipped:
            sink.write(json.dumps({"type": "skipped", "input": item, "reason": why}) + "\n")
    return per_stage, dict(counts), seconds


def _show(summary: dict[str, Any], names: list[str], plan: Any) -> None:
    items = summary["items"]

    def share(n: int) -> str:
        return f"{100 * n / items:.1f} %"

    table = Table(title=Text("Cascade run"), header_style="bold")
    for header in ("stage", "decided", "share"):
        table.add_column(Text(header), justify="left" if header == "stage" else "right")
    for i, (name, n) in enumerate(zip(names, summary["per_stage"], strict=True)):
        table.add_row(Text(f"{i}: {name}"), Text(str(n)), Text(share(n)))
    console.print(table)
    decided = Table(title=Text("Decisions"), header_style="bold")
    for header in ("class", "items", "share"):
        decided.add_column(Text(header), justify="left" if header == "class" else "right")
    for name, n in summary["decisions"].items():
        decided.add_row(Text(name), Text(str(n)), Text(share(n)))
    console.print(decided)
    line = f"{_count(items, 'item')}, {summary['ms_per_item']:.3f} ms per item in the cascade"
    if plan.ignored:
        line += f"; {_count(plan.ignored, 'file')} in the folders not images, left out"
    console.print(Text(line))
    if plan.skipped:
        console.print(
            Text.assemble(
                "  ",
                ("!", "yellow"),
                f" skipped {_count(len(plan.skipped), 'input')} that could not be read: "
                f"{plan.skipped_line()}",
            )
        )
    for warning in plan.warnings:
        console.print(Text.assemble("  ", ("!", "yellow"), f" {warning}"))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
