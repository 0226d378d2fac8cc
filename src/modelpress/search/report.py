"""``optimize.html``: the search at a glance — the Pareto scatter (accuracy lost vs latency, size
as marker size, the front drawn, the recommendation marked), every trial with its lineage and
outcome, the settings."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from modelpress.core.rundir import write_text_atomic
from modelpress.report import format as fmt
from modelpress.report import html
from modelpress.report.sections import Grid

REPORT = "optimize.html"
ACCURACY = "accuracy vs baseline"  # the column of ``accuracy_change``


def accuracy_change(loss_pt: Any) -> str:
    """A candidate's primary metric against the baseline, in words: "lost 1.20 pt", "gained
    0.50 pt", "no change" (``loss_pt`` is what it lost; negative: it gained)."""
    x = fmt.finite(loss_pt)
    if x is None:
        return fmt.MISSING
    if round(x, 2) == 0:
        return "no change"
    return f"{'lost' if x > 0 else 'gained'} {abs(x):.2f} pt"


def recommended_line(rec: dict[str, Any]) -> str:
    """``recommended: NAME (PATH): WHY``; the path left out where there is none (the baseline
    held in memory)."""
    where = f" ({rec['path']})" if rec.get("path") else ""
    return f"recommended: {rec.get('name')}{where}: {rec.get('why')}"


def scatter(journal: dict[str, Any], record: dict[str, Any]) -> bytes | None:
    """Every measured candidate; the feasible front joined by a line, the pick circled."""
    from modelpress.report.plots import png, pyplot
    from modelpress.search.front import point

    result = journal.get("result") or {}
    front = {f["name"] for f in result.get("front") or []}
    pick = (result.get("recommendation") or {}).get("name")
    entries = [record.get("baseline") or {}, *(record.get("artifacts") or [])]
    pts = [(e.get("name"), point(e)) for e in entries if e.get("status", "ok") == "ok"]
    pts = [(n, p) for n, p in pts if p is not None]
    if not pts:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    biggest = max(p["size_mb"] for _, p in pts) or 1.0
    for name, p in pts:
        on = name in front
        ax.scatter(
            p["latency_ms"],
            p["loss_pt"],
            s=30 + 400 * p["size_mb"] / biggest,
            color="#DD8452" if on else "#8c8c8c",
            alpha=0.85 if on else 0.45,
            edgecolors="black" if on else "none",
            zorder=3 if on else 2,
        )
    line = sorted((p for n, p in pts if n in front), key=lambda p: p["latency_ms"])
    if len(line) > 1:
        ax.plot([p["latency_ms"] for p in line], [p["loss_pt"] for p in line], color="#DD8452")
    for name, p in pts:
        if name == pick:
            ax.scatter(p["latency_ms"], p["loss_pt"], s=500, facecolors="none", edgecolors="red")
            ax.annotate(
                f"recommended: {name}",
                (p["latency_ms"], p["loss_pt"]),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=8,
                color="red",
            )
    bound = (journal.get("settings") or {}).get("targets", {}).get("max_accuracy_drop")
    if bound is not None:
        ax.axhline(bound, color="red", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("latency p50, ms (batch 1, log scale)")
    ax.set_ylabel("accuracy lost, pt (lower is better)")
    ax.set_title("Candidates: front in orange, marker area ∝ size")
    ax.grid(alpha=0.3)
    return png(fig)


def trials(journal: dict[str, Any]) -> Grid:
    grid = Grid(
        "Trials",
        ["#", "pipeline", "status", ACCURACY, "latency ms", "size MB", "feasible", "front", "why"],
        numeric={0, 4, 5},
    )
    for t in journal.get("trials") or []:
        p = t.get("point") or {}
        grid.rows.append(
            [
                str(t.get("index")),
                str(t.get("pipeline")),
                str(t.get("status")),
                accuracy_change(p.get("loss_pt")),
                fmt.sig(p.get("latency_ms")),
                fmt.sig(p.get("size_mb")),
                "yes" if t.get("feasible") else "no" if t.get("point") else "—",
                "yes" if t.get("on_front") else "",
                "; ".join([t.get("reason") or "", *(t.get("misses") or [])]).strip("; "),
            ]
        )
    return grid


def write_report(out: Path, journal: dict[str, Any], record: dict[str, Any]) -> Path:
    result = journal.get("result") or {}
    settings = journal.get("settings") or {}
    rec = result.get("recommendation")
    body = ["<h1>modelpress optimize</h1>"]
    if rec:
        where = f" ({rec['path']})" if rec.get("path") else ""
        recipe = f" Recipe: {rec['recipe']}" if rec.get("recipe") else ""
        body.append(
            f'<p class="why"><b>Recommended: {escape(str(rec["name"]) + where)}</b> — '
            f"{escape(str(rec['why']))}.{escape(recipe)}</p>"
        )
    else:
        lines = [
            f"{escape(c['name'])}: {escape('; '.join(c['misses']))}"
            for c in result.get("least_violating") or []
        ]
        body.append(
            '<p class="why"><b>No candidate meets every constraint.</b> Closest: '
            + "<br>".join(lines)
            + "</p>"
        )
    png = scatter(journal, record)
    if png:
        body += ["<h2>Pareto front</h2>", html.image("pareto.png", png)]
    front = Grid("Front", ["candidate", "node", ACCURACY, "latency ms", "size MB"], numeric={3, 4})
    for f in result.get("front") or []:
        front.rows.append(
            [
                f["name"],
                fmt.text(f.get("node")),
                accuracy_change(f["loss_pt"]),
                fmt.sig(f["latency_ms"]),
                fmt.sig(f["size_mb"]),
            ]
        )
    body += ["<h2>Front (feasible, not dominated)</h2>", html.table(front)]
    body += ["<h2>Trials</h2>", html.table(trials(journal))]
    facts = [
        (
            "targets",
            ", ".join(
                f"{k} {v}" for k, v in (settings.get("targets") or {}).items() if v is not None
            ),
        ),
        ("time budget", f"{settings.get('time_s')} s" if settings.get("time_s") else "none"),
        ("max trials", str(settings.get("max_trials") or "all")),
        ("prefer", ", ".join(settings.get("prefer") or [])),
        ("elapsed", f"{journal['elapsed_s']} s" if journal.get("elapsed_s") else fmt.MISSING),
        ("note", journal.get("note") or ""),
    ]
    body.append(
        "<h2>Settings</h2><dl>"
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
        + "</dl>"
    )
    body.append(f"<h3>Space</h3><pre>{escape(_yaml(settings.get('space')))}</pre>")
    path = out / REPORT
    write_text_atomic(path, html.page("modelpress optimize", body))
    return path


def _yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False)
