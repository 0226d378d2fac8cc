"""``modelpress cascade build | eval``: a cheap stage before a precise one, with a certified
bound on what the early exits let through (``deploy/cascade.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from modelpress.cli.common import Data, Shape, Threads, app, console, user_errors

cascade_app = typer.Typer(
    help="Cascades: cheap stages decide the sure items, a precise one the rest; leakage certified.",
    no_args_is_help=True,
)


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _num(v: Any, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def show(figures: dict[str, Any], bound: dict[str, Any] | None, certificates: list[Any]) -> None:
    """The cascade beside each stage alone, then the certificate."""
    table = Table(title=Text("Cascade"), header_style="bold")
    for header in ("", "AUC", "F1", "P", "R", "leakage", "deferred", "ms/item", "items/s"):
        table.add_column(Text(header), justify="left" if not header else "right")
    c = figures["cascade"]
    table.add_row(
        *map(
            Text,
            [
                "cascade",
                _num(c["auc"]),
                _num(c["f1"]),
                _num(c["precision"]),
                _num(c["recall"]),
                f"{_pct(c['leakage'])} ({c['leaked']}/{c['positives']})",
                _pct(c["deferred"]),
                _num(c["ms_per_item"], 3),
                f"{c['throughput_per_s']:.0f}",
            ],
        )
    )
    for i, st in enumerate(figures["stages"]):
        a = st["alone"]
        share = _pct(c["stage_share"][i])
        table.add_row(
            *map(
                Text,
                [
                    f"{st['name']} alone (decides {share})",
                    _num(a["auc"]),
                    _num(a["f1"]),
                    _num(a["precision"]),
                    _num(a["recall"]),
                    "",
                    "",
                    _num(a["ms_per_item"], 3),
                    f"{a['throughput_per_s']:.0f}",
                ],
            )
        )
    console.print(table)
    if bound:
        lines = [
            f"bound: leakage ≤ {_pct(bound['max_leakage'])} at {_pct(bound['confidence'])} "
            f"confidence ({bound.get('split', '')})"
        ]
        for i, cert in enumerate(certificates):
            if cert:
                high = "never" if cert["high"] is None else f"{cert['high']:.2f}"
                lines.append(
                    f"stage {i}: exit negative below {cert['low']:.2f}, positive at or above "
                    f"{high}; {cert['passed']} of {cert['positives']} calibration positives let "
                    f"through, upper bound {_pct(cert['upper_bound'])}"
                )
        console.print(Text("\n".join(lines)))


@cascade_app.command("build")
@user_errors
def build_command(
    data: Data,
    out: Annotated[Path, typer.Option("--out", help="The bundle directory to write.")],
    stage: Annotated[
        list[str],
        typer.Option("--stage", help="A stage's model file, cheap first (give it twice or more)."),
    ],
    max_leakage: Annotated[
        float, typer.Option("--max-leakage", help="Certified bound on positives let through.")
    ] = 0.05,
    confidence: Annotated[float, typer.Option("--confidence")] = 0.95,
    input_shape: Shape = None,
    threads: Threads = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
) -> None:
    """Calibrate (temperature) and certify the stages on the calibration split, measure on the
    validation split, and write a bundle (the stage files and cascade.json)."""
    from modelpress.deploy.cascade import build

    cascade, figures = build(
        list(stage),
        data,
        out,
        max_leakage=max_leakage,
        confidence=confidence,
        input_shape=input_shape,
        threads=threads,
    )
    try:
        show(figures, cascade.meta["bound"], [s.certificate for s in cascade.stages])
    finally:
        cascade.close()
    if json_out:
        json_out.write_text(json.dumps(_document(cascade.meta, figures, cascade), indent=2))
    console.print(Text(f"bundle: {out}"))


@cascade_app.command("eval")
@user_errors
def eval_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle from modelpress cascade build.")],
    data: Data,
    threads: Threads = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
) -> None:
    """Evaluate the bundle on the whole of ``--data`` (held-out data), each stage in its
    runtime."""
    from modelpress.deploy.cascade import Cascade, evaluate, whole

    cascade = Cascade.load(bundle, data, threads)
    try:
        inputs, labels = whole(cascade)
        figures = evaluate(cascade, inputs, labels)
        show(figures, cascade.meta.get("bound"), [s.certificate for s in cascade.stages])
    finally:
        cascade.close()
    if json_out:
        json_out.write_text(json.dumps(_document(cascade.meta, figures, cascade), indent=2))


def _document(meta: dict[str, Any], figures: dict[str, Any], cascade: Any) -> dict[str, Any]:
    bound = dict(meta.get("bound") or {})
    certs = [s.certificate for s in cascade.stages if s.certificate]
    bound["certified"] = all(c.get("certified") for c in certs) if certs else False
    bound["upper_bound"] = sum(c["upper_bound"] for c in certs) if certs else None
    return {**figures, "bound": bound}


def register() -> None:
    app.add_typer(cascade_app, name="cascade")
    from modelpress.cli import cascade_run  # noqa: F401  (registers cascade run)
