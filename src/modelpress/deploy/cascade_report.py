"""BUNDLE/cascade.json → BUNDLE/report.html: one self-contained page (the run report's CSS and
tables, figures as inline PNGs) that says what the cascade does and why it may be trusted.

- the cascade beside each stage alone (quality, leakage, deferred share, time, speed-up);
- where items are decided (a stacked bar of the stage shares);
- each early stage's certificate and the overall bound;
- each stage's temperature fit, with ONE reliability figure: a panel per stage, before and after
  temperature scaling on the same axes against the diagonal, bin counts as a light histogram.

Every value may be missing (an older bundle, a multi-class one, figures not measured): the page
shows "—" for it and leaves out a figure it has no numbers for, never raising on a field.
"""

from __future__ import annotations

import itertools
import math
from html import escape
from pathlib import Path
from typing import Any

from modelpress.core.rundir import write_text_atomic
from modelpress.deploy.bundle import read_doc
from modelpress.deploy.certify import TWO_THRESHOLDS
from modelpress.deploy.exits import rule_of
from modelpress.report import format as fmt
from modelpress.report import html
from modelpress.report.sections import Grid

REPORT_FILE = "report.html"
BEFORE_COLOR = "#8C8C8C"  # T = 1; "after" is plots.HIGHLIGHT


def write_report(
    bundle: Path | str,
    figures: dict[str, Any] | None = None,
    title: str | None = None,
    *,
    data: str | None = None,
) -> Path:
    """Write BUNDLE/report.html (atomically) from BUNDLE/cascade.json and return its path.

    ``figures``: what ``cascade.evaluate`` measured, shown instead of the build's validation
    figures (``cascade eval``); ``data`` names the data they were measured on."""
    bundle = Path(bundle)
    doc = read_doc(bundle)
    source = _source(doc, figures, data)
    shown = doc.get("validation") if figures is None else figures
    page = render(doc, _dict(shown), title or f"modelpress cascade: {bundle.name}", source)
    path = bundle / REPORT_FILE
    write_text_atomic(path, page)
    return path


def _source(doc: dict[str, Any], figures: dict[str, Any] | None, data: str | None) -> str:
    """On which data the figures were measured, in words."""
    if figures is None:
        if not isinstance(doc.get("validation"), dict):
            return "No figures: the bundle records no measurements."
        return (
            f"Figures measured on the validation split of {fmt.text(doc.get('data'))} "
            "when the bundle was built."
        )
    return f"Figures measured on {data or 'data given by the caller'} (not the build's data)."


# ---------------------------------------------------------------------- page


def render(
    doc: dict[str, Any], figures: dict[str, Any] | None, title: str, source: str = ""
) -> str:
    """The whole page for a cascade description and the figures to show (None: none)."""
    stages = [s for s in _list(doc.get("stages")) if isinstance(s, dict)]
    body = [f"<h1>{escape(title)}</h1>", f"<p>{escape(_summary(doc, stages))}</p>"]
    body.append(f"<p>{escape(source)}</p>" if source else "")

    if figures:
        body += ["<h2>Cascade vs each stage alone</h2>", html.table(compare(figures))]
        body.append(
            '<p class="legend">leakage: positives the early stages let through as negative '
            "(leaked / positives) · deferred: items left to the last stage · decides: share of "
            "items each stage decides in the cascade · speed-up: time per item of the last "
            "stage alone over this row's</p>"
        )
        shares = stage_share_figure(figures, [_name(s, i) for i, s in enumerate(stages)])
        if shares:
            body += ["<h2>Where items are decided</h2>", html.image("stage_share.png", shares)]

    body.append("<h2>Certificates</h2>")
    certs = certificates(stages)
    if certs.rows:
        body.append(html.table(certs))
        body.append(
            '<p class="legend">exit negative below low, positive at or above high, defer the '
            "rest · upper bound: the Clopper–Pearson bound at the confidence on passed / "
            "positives (what the measure counts), certified when at most the max leakage · "
            "deferred: share of the calibration items reaching the stage that it defers</p>"
        )
    else:
        body.append("<p>No early stage has a certificate.</p>")
    body.append(_bound(doc.get("bound"), stages))

    body += ["<h2>Calibration</h2>", html.table(calibration(stages))]
    rule = rule_of(doc)  # None: a task this modelpress does not run in cascades
    figure = reliability_figure(stages, rule is not None and not rule.one_probability)
    if figure:
        body.append(html.image("reliability.png", figure))
        body.append(
            '<p class="legend">Reliability on the calibration split: mean predicted '
            "probability against the observed frequency per bin, before (grey, T = 1) and "
            "after (orange) temperature scaling; marker size and the light bars give the items "
            "per bin (after). On the diagonal is perfectly calibrated.</p>"
        )
    else:
        body.append("<p>No reliability bins recorded in the bundle.</p>")

    meta = _dict(doc.get("meta_model"))
    if meta:
        from modelpress.deploy.meta import describe

        oof = _dict(meta.get("out_of_fold")) or {}
        body += [
            "<h2>Meta-model</h2>",
            f"<p>{escape(describe(meta))}.</p>",
            f"<p>{escape(str(oof.get('says', '')))}</p>" if oof.get("says") else "",
        ]
    body += ["<h2>Bundle</h2>", _pairs(_bundle_facts(doc, stages))]
    return html.page(escape(title), body)


def _summary(doc: dict[str, Any], stages: list[dict[str, Any]]) -> str:
    names = " → ".join(_name(s, i) for i, s in enumerate(stages)) or fmt.MISSING
    task = fmt.text(doc.get("task"))
    return f"{len(stages)} stages ({names}), task {task}, built on {fmt.text(doc.get('data'))}."


def compare(figures: dict[str, Any]) -> Grid:
    """The cascade beside each stage alone."""
    cascade = _dict(figures.get("cascade")) or {}
    stages = [_dict(s) or {} for s in _list(figures.get("stages"))]
    alone = [_dict(s.get("alone")) or {} for s in stages]
    shares = _list(cascade.get("stage_share"))
    last_ms = fmt.finite(alone[-1].get("ms_per_item")) if alone else None
    with_accuracy = any(r.get("accuracy") is not None for r in [cascade, *alone])
    quality = ["accuracy"] * with_accuracy + ["auc", "f1", "precision", "recall"]
    headers = ["", *(_LABEL[k] for k in quality)]
    headers += ["leakage", "deferred", "decides", "ms/item", "items/s", "speed-up vs last"]
    headers += ["1 item p50 / p90 ms"]

    def row(name: str, r: dict[str, Any], rest: list[str]) -> list[str]:
        speedup = _ratio(last_ms, fmt.finite(r.get("ms_per_item")))
        one = _dict(r.get("single_ms")) or {}
        return [
            name,
            *(fmt.metric(r.get(k)) for k in quality),
            *rest,
            fmt.ms(r.get("ms_per_item")),
            fmt.count(r.get("throughput_per_s")),
            fmt.ratio(speedup),
            f"{fmt.ms(one.get('p50'))} / {fmt.ms(one.get('p90'))}",
        ]

    leak = fmt.pct(cascade.get("leakage"), 2)
    if "leaked" in cascade or "positives" in cascade:
        leak += f" ({fmt.text(cascade.get('leaked'))}/{fmt.text(cascade.get('positives'))})"
    items = fmt.count(cascade.get("items"))
    rows = [row(f"cascade ({items} items)", cascade, [leak, fmt.pct(cascade.get("deferred")), ""])]
    for i, (s, a) in enumerate(zip(stages, alone, strict=True)):
        share = fmt.pct(shares[i]) if i < len(shares) else fmt.MISSING
        rows.append(row(f"{fmt.text(s.get('name'))} alone", a, ["", "", share]))
    return Grid("Cascade vs each stage alone", headers, rows, set(range(1, len(headers))))


_LABEL = {"accuracy": "accuracy", "auc": "AUC", "f1": "F1", "precision": "P", "recall": "R"}


def certificates(stages: list[dict[str, Any]]) -> Grid:
    """One row per early stage (every stage but the last)."""
    headers = ["stage", "kind", "low", "high", "positives", "passed", "upper bound"]
    headers += ["max leakage", "confidence", "certified", "deferred", "false-alarm bound"]
    headers += ["measure", "note"]
    rows = []
    for i, stage in enumerate(stages[:-1]):
        c = _dict(stage.get("certificate")) or {}
        binary = c.get("kind", TWO_THRESHOLDS) == TWO_THRESHOLDS
        high = c.get("high")
        rows.append(
            [
                _name(stage, i),
                fmt.text(c.get("kind")),
                fmt.sig(c.get("low")),
                "never" if binary and c and high is None else fmt.sig(high),
                fmt.text(c.get("positives")),
                fmt.text(c.get("passed")),
                fmt.pct(c.get("upper_bound"), 2),
                fmt.pct(c.get("max_leakage"), 2),
                fmt.pct(c.get("confidence")),
                _yes_no(c.get("certified")),
                fmt.pct(c.get("deferred_share")),
                _false_alarm(c),
                fmt.text(c.get("measure")),
                fmt.text(c.get("note")),
            ]
        )
    return Grid("Certificates", headers, rows, {2, 3, 4, 5, 6, 7, 8, 10})


def _false_alarm(c: dict[str, Any]) -> str:
    if c.get("false_alarm_bound") is None:
        return fmt.MISSING
    text = fmt.pct(c["false_alarm_bound"], 2)
    if c.get("max_false_alarm") is not None:
        text += f" (max {fmt.pct(c['max_false_alarm'], 2)})"
    if c.get("false_alarms") is not None and c.get("negatives") is not None:
        text += f", {c['false_alarms']}/{c['negatives']} negatives"
    return text


def _bound(bound: Any, stages: list[dict[str, Any]]) -> str:
    """The cascade's overall bound (the early stages' budgets add up: a union bound)."""
    b = _dict(bound)
    last = _name(stages[-1], len(stages) - 1) if stages else fmt.MISSING
    tail = f"<p>The last stage, {escape(last)}, decides every item left at P ≥ 0.5.</p>"
    if not b:
        return "<p>No overall bound recorded.</p>" + tail
    certs = [c for s in stages[:-1] if (c := _dict(s.get("certificate")))]
    bounds = [fmt.finite(c.get("upper_bound")) for c in certs]
    total = sum(x for x in bounds if x is not None) if certs and None not in bounds else None
    pairs = [
        ("max leakage", fmt.pct(b.get("max_leakage"), 2)),
        ("confidence", fmt.pct(b.get("confidence"))),
        ("split", fmt.text(b.get("split"))),
        ("positives", f"{fmt.text(b.get('positives'))} in the calibration split"),
        ("upper bounds", f"{fmt.pct(total, 2)} summed over the early stages"),
        ("certified", _yes_no(all(c.get("certified") is True for c in certs) if certs else None)),
    ]
    return _pairs(pairs) + tail


def calibration(stages: list[dict[str, Any]]) -> Grid:
    headers = ["stage", "temperature", "accepted", "reason", "NLL", "ECE"]
    rows = []
    for i, stage in enumerate(stages):
        cal = _dict(stage.get("calibration")) or {}
        t = cal.get("temperature", stage.get("temperature"))
        rows.append(
            [
                _name(stage, i),
                fmt.sig(t),
                _yes_no(cal.get("accepted")),
                fmt.text(cal.get("reason")),
                f"{fmt.sig(cal.get('nll_before'))} → {fmt.sig(cal.get('nll_after'))}",
                f"{fmt.sig(cal.get('ece_before'))} → {fmt.sig(cal.get('ece_after'))}",
            ]
        )
    return Grid("Calibration", headers, rows, {1, 4, 5})


def _bundle_facts(doc: dict[str, Any], stages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    classes = doc.get("classes")
    pairs = [
        ("data", fmt.text(doc.get("data"))),
        ("task", fmt.text(doc.get("task"))),
        ("classes", ", ".join(map(str, classes)) if isinstance(classes, list) else fmt.MISSING),
        ("input shape", fmt.text(doc.get("input_shape"))),
        ("format", fmt.text(doc.get("format_version"))),
    ]
    pairs += [(f"stage {i}", fmt.text(s.get("file"))) for i, s in enumerate(stages)]
    return pairs


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>"


# ---------------------------------------------------------------------- figures


def stage_share_figure(figures: dict[str, Any], names: list[str]) -> bytes | None:
    """One stacked horizontal bar: the share of items each stage decides; None without shares
    for every stage that add up to 1."""
    from modelpress.report.plots import HIGHLIGHT, PLAIN, _png, _pyplot

    cascade = _dict(figures.get("cascade")) or {}
    shares = [fmt.finite(x) for x in _list(cascade.get("stage_share"))]
    measured = [_dict(s) or {} for s in _list(figures.get("stages"))]
    labels = [fmt.text(s.get("name")) for s in measured] or names
    if len(shares) != len(labels) or None in shares or abs(sum(shares) - 1) > 0.01:
        return None
    plt = _pyplot()
    colors = [PLAIN, HIGHLIGHT, *plt.get_cmap("tab10").colors[2:]]
    fig, ax = plt.subplots(figsize=(9, 1.6))
    left = 0.0
    for i, (label, share) in enumerate(zip(labels, shares, strict=True)):
        ax.barh([0], [share], left=left, color=colors[i % len(colors)], label=label)
        if share >= 0.06:
            ax.text(left + share / 2, 0, fmt.pct(share), ha="center", va="center", fontsize=9)
        left += share
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.xaxis.set_major_formatter(lambda x, _: f"{100 * x:.0f}%")
    ax.set_xlabel(f"share of the {fmt.count(cascade.get('items'))} items decided by each stage")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _png(fig)


def reliability_figure(stages: list[dict[str, Any]], multiclass: bool = False) -> bytes | None:
    """A panel per stage: reliability before and after temperature scaling; None when no stage
    recorded its bins."""
    from modelpress.report.plots import HIGHLIGHT, PLAIN, _png, _pyplot

    panels = []
    for i, stage in enumerate(stages):
        cal = _dict(stage.get("calibration")) or {}
        rel = _dict(cal.get("reliability")) or {}
        panels.append((_name(stage, i), cal, _bins(rel.get("before")), _bins(rel.get("after"))))
    if not any(before or after for _, _, before, after in panels):
        return None
    plt = _pyplot()
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (name, cal, before, after) in zip(axes.flat, panels, strict=False):
        ax.plot([0, 1], [0, 1], ls="--", color="#555555", lw=1, label="perfectly calibrated")
        shown = after or before
        if shown:  # the item counts, faint, on their own scale behind the curves
            counts = ax.twinx()
            counts.bar(shown["left"], shown["count"], width=shown["width"], align="edge",
                       color=PLAIN, alpha=0.15, linewidth=0)  # fmt: skip
            counts.set_ylim(0, 3 * max(shown["count"]) or 1)  # bars in the lower third
            counts.set_ylabel("items per bin", color="#888888", fontsize=8)
            counts.tick_params(labelsize=7, colors="#888888")
            ax.set_zorder(counts.get_zorder() + 1)
            ax.patch.set_visible(False)
        top = max([*(before or {}).get("count", []), *(after or {}).get("count", []), 1])
        t = fmt.sig(cal.get("temperature"))
        for bins, color, label in (
            (before, BEFORE_COLOR, "before (T = 1)"),
            (after, HIGHLIGHT, f"after (T = {t})"),
        ):
            if not bins or not bins["x"]:
                continue
            ax.plot(bins["x"], bins["y"], color=color, lw=1.2)
            sizes = [12 + 120 * math.sqrt(n / top) for n in bins["n"]]
            ax.scatter(bins["x"], bins["y"], s=sizes, color=color, edgecolors="black",
                       linewidths=0.4, zorder=3, label=label)  # fmt: skip
        ece = f"ECE {fmt.sig(cal.get('ece_before'))} → {fmt.sig(cal.get('ece_after'))}"
        ax.set_title(f"{name}\n{ece}", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean top-1 confidence" if multiclass else "mean predicted P(positive)")
        ax.set_ylabel("top-1 accuracy" if multiclass else "observed share of positives")
        ax.grid(alpha=0.3)
        if not (before or after):
            ax.text(0.5, 0.5, "no bins recorded", ha="center", va="center")
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _bins(value: Any) -> dict[str, list[float]] | None:
    """A ``Reliability.to_dict()`` as plot-ready lists (non-empty bins only), or None when it
    is missing or its lists do not fit together."""
    r = _dict(value)
    if not r:
        return None
    edges, conf, acc, count = (
        _list(r.get(k)) for k in ("edges", "confidence", "accuracy", "count")
    )
    edges_f = [fmt.finite(e) for e in edges]
    counts = [fmt.finite(c) for c in count]
    bins = len(counts)
    if not bins or len(edges_f) != bins + 1 or len(conf) != bins or len(acc) != bins:
        return None
    if None in edges_f or None in counts:
        return None
    points = [
        (x, y, n)
        for c, a, n in zip(conf, acc, counts, strict=True)
        if (x := fmt.finite(c)) is not None and (y := fmt.finite(a)) is not None and n
    ]
    return {
        "left": edges_f[:-1],
        "width": [b - a for a, b in itertools.pairwise(edges_f)],
        "count": counts,
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "n": [p[2] for p in points],
    }


# ---------------------------------------------------------------------- tolerant access


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(stage: dict[str, Any], index: int) -> str:
    return fmt.text(stage.get("name")) if stage.get("name") else f"stage {index}"


def _yes_no(value: Any) -> str:
    return fmt.MISSING if not isinstance(value, bool) else ("yes" if value else "no")


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None
