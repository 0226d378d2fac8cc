"""``modelpress cascade build | eval``: a cheap stage before a precise one, with a certified
bound on what the early exits let through (``deploy/cascade.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from modelpress.cli.common import (
    Data,
    Shape,
    Threads,
    TrustCode,
    app,
    console,
    user_errors,
)
from modelpress.core.rundir import holding_output

cascade_app = typer.Typer(
    help="Cascades: cheap stages decide the sure items, a precise one the rest; leakage certified.",
    no_args_is_help=True,
)


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _num(v: Any, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _single(f: dict[str, Any]) -> str:
    one = f.get("single_ms") or {}
    return f"{_num(one.get('p50'), 3)} / {_num(one.get('p90'), 3)}"


def _unreliable(rows: list[dict[str, Any]]) -> list[str]:
    """Why the rows' timings are not to be trusted, one reason of each kind (the first: the
    same load average read twice a few seconds apart is one reason)."""
    import re

    kinds: dict[str, str] = {}
    for row in rows:
        for reason in row.get("unreliable") or []:
            kinds.setdefault(re.sub(r"\d+(\.\d+)?", "#", str(reason)), str(reason))
    return list(kinds.values())


def show(
    figures: dict[str, Any],
    bound: dict[str, Any] | None,
    certificates: list[Any],
    meta_model: dict[str, Any] | None = None,
) -> None:
    """The cascade beside each stage alone, then the certificate."""
    from modelpress.deploy.meta import describe

    c = figures["cascade"]
    many = bool(bound) and not bound.get("measure", "leakage").startswith("leakage")  # K classes
    headers = ["", "AUC", "F1", "P", "R", *(["acc"] if many else [])]
    headers += ["leakage", "deferred", "ms/item", "items/s", "1 item p50/p90 ms"]
    table = Table(title=Text("Cascade"), header_style="bold")
    for header in headers:
        table.add_column(Text(header), justify="left" if not header else "right")

    def quality(f: dict[str, Any]) -> list[str]:
        cells = [_num(f.get("auc")), _num(f.get("f1")), _num(f.get("precision"))]
        cells += [_num(f.get("recall"))] + ([_num(f.get("accuracy"))] if many else [])
        return cells

    leak = _pct(c.get("leakage"))
    if c.get("positives"):
        leak += f" ({c.get('leaked', 0)}/{c['positives']})"
    table.add_row(
        *map(
            Text,
            [
                "cascade",
                *quality(c),
                leak,
                _pct(c.get("deferred")),
                _num(c["ms_per_item"], 3),
                f"{c['throughput_per_s']:.0f}",
                _single(c),
            ],
        )
    )
    last = len(figures["stages"]) - 1
    for i, st in enumerate(figures["stages"]):
        a = st["alone"]
        share = _pct(c["stage_share"][i])
        decides = "meta-model" if i == last and meta_model else st["name"]
        table.add_row(
            *map(
                Text,
                [
                    f"{st['name']} alone ({decides} decides {share})",
                    *quality(a),
                    "",
                    "",
                    _num(a["ms_per_item"], 3),
                    f"{a['throughput_per_s']:.0f}",
                    _single(a),
                ],
            )
        )
    console.print(table)
    unreliable = _unreliable([c, *(st["alone"] for st in figures["stages"])])
    if unreliable:
        console.print(
            Text.assemble(("!", "yellow"), f" timings unreliable: {'; '.join(unreliable)}")
        )
    lines = []
    if bound:
        lines.append(
            f"bound: {bound.get('measure', 'leakage')} ≤ {_pct(bound['max_leakage'])} at "
            f"{_pct(bound['confidence'])} confidence ({bound.get('split', '')})"
        )
        for i, cert in enumerate(certificates):
            if not cert:
                continue
            if cert.get("bucketed"):
                where = f"{cert['bucketed']}, a certificate each"
            elif cert["kind"] == "confidence":
                high = "never" if cert["high"] is None else f"{cert['high']:.2f}"
                where = f"exit with the top class at confidence ≥ {high}"
            else:
                high = "never" if cert["high"] is None else f"{cert['high']:.2f}"
                where = f"exit negative below {cert['low']:.2f}, positive at or above {high}"
            lines.append(
                f"stage {i}: {where}; {cert['passed']} of {cert['positives']} counted on "
                f"calibration, upper bound {_pct(cert['upper_bound'])}"
            )
    if meta_model:
        lines.append(describe(meta_model))
        if c.get("meta_changed") is not None:
            lines.append(
                f"meta-model decided {_pct(c.get('meta_decisions'))} of items and overruled the "
                f"last stage on {c['meta_changed']}"
            )
    if lines:
        console.print(Text("\n".join(lines)))


@cascade_app.command("build")
@user_errors
@holding_output("out", folder=True)  # a file or read-only --out, a second build into it
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
    task: Annotated[
        str | None,
        typer.Option(
            "--task", help="binary (two thresholds; the default) or classification (top-1)."
        ),
    ] = None,
    positive: Annotated[
        list[str] | None,
        typer.Option(
            "--positive",
            help="The class to guard (binary: the positive class; classification: repeat for "
            "several; the bound is then on their items exiting as another class).",
        ),
    ] = None,
    meta: Annotated[
        str | None,
        typer.Option(
            "--meta",
            help="A meta-model deciding what reaches the end: logistic or "
            "lightgbm (fitted out-of-fold on calibration).",
        ),
    ] = None,
    buckets: Annotated[
        str | None,
        typer.Option(
            "--buckets",
            help="A certificate per bin of the early stage's entropy or the input's sharpness: "
            "entropy:3, quality:3.",
        ),
    ] = None,
    max_false_alarm: Annotated[
        float | None,
        typer.Option(
            "--max-false-alarm",
            help="Binary: bound on negatives exiting early as positive (default: --max-leakage).",
        ),
    ] = None,
    input_shape: Shape = None,
    threads: Threads = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
    trust: TrustCode = False,
) -> None:
    """Calibrate (temperature) and certify the stages on the calibration split, measure on the
    validation split, and write a bundle (the stage files, cascade.json and report.html).

    A stage given as a deployed file (.onnx, .tflite, OpenVINO .xml, .pt2, TorchScript) goes
    into the bundle as it is; a torch model (a .pt checkpoint, zoo:NAME) is traced to
    TorchScript there. The bundle records the digest of every file and the calibration scores
    its certificates were counted on, and is checked against both whenever it is loaded."""
    from modelpress.deploy.cascade import build
    from modelpress.deploy.cascade_report import write_report

    cascade, figures = build(
        list(stage),
        data,
        out,
        max_leakage=max_leakage,
        confidence=confidence,
        input_shape=input_shape,
        threads=threads,
        task=task,
        positive=list(positive) if positive else None,
        meta=meta,
        buckets=buckets,
        max_false_alarm=max_false_alarm,
        trust=trust,
    )
    try:
        show(
            figures,
            cascade.meta["bound"],
            [s.certificate for s in cascade.stages],
            cascade.meta.get("meta_model"),
        )
    finally:
        cascade.close()
    if json_out:
        json_out.write_text(json.dumps(_document(cascade.meta, figures, cascade), indent=2))
    report = write_report(out)
    console.print(Text(f"bundle: {out}  report: {report}"))


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
        show(
            figures,
            cascade.meta.get("bound"),
            [s.certificate for s in cascade.stages],
            cascade.meta.get("meta_model"),
        )
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
    from modelpress.cli.cascade_run import run_command

    cascade_app.command("run")(run_command)
    app.add_typer(cascade_app, name="cascade")
