"""record.json → report.md: the sections of ``sections`` laid out as GitHub markdown."""

from __future__ import annotations

from typing import Any

from modelpress.report import sections
from modelpress.report.sections import Grid, Note


def _cell(text: str) -> str:
    """A table cell: pipes escaped, newlines flattened (a row is one line)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(grid: Grid) -> str:
    align = ["---:" if i in grid.numeric else "---" for i in range(len(grid.headers))]
    lines = [
        "| " + " | ".join(map(_cell, grid.headers)) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in grid.rows]
    return "\n".join(lines)


def _note(note: Note) -> str:
    """Verbatim: one line inline, several lines in a fenced block under the bullet."""
    label = f"- **{note.source}**" + (" error" if note.kind == "error" else "")
    if "\n" not in note.text.strip():
        return f"{label}: {note.text.strip()}"
    fence = "````" if "```" in note.text else "```"
    body = "\n".join("  " + line for line in note.text.strip("\n").splitlines())
    return f"{label}:\n\n  {fence}\n{body}\n  {fence}"


def _size_legend(record: dict[str, Any]) -> str:
    kinds = {e.get("size_kind") for e in sections.entries(record)}
    if "state_dict" in kinds:
        return (
            "a torch model's weights as torch.save stores them (its checkpoint's metadata "
            "left out), any other artifact's deployed file"
        )
    return "the deployed file"


def render(record: dict[str, Any], plots: list[str] | None = None) -> str:
    """The whole report.md; ``plots`` are paths relative to the report (plots/overview.png)."""
    out = [f"# {sections.title(record)}", "", sections.summary(record), ""]

    compared = sections.techniques(record)
    if compared:
        best = sections.best_techniques(record)
        out += ["## Techniques compared", "", table(compared), "", f"**{best}**", ""]
        out += ["Each technique applied alone to the baseline, measured in its own runtime.", ""]

    out += ["## Progression", "", table(sections.progression(record)), ""]
    memory = sections.memory_legend(record)
    out += [
        f"{sections.RECOMMENDED_MARK} recommended · latency at batch 1 (otherwise @b) · "
        "speedup vs the baseline · verification vs each artifact's parent · size: "
        + _size_legend(record)
        + (f" · {memory}" if memory else ""),
        "",
    ]
    busy = sections.unreliable(record)
    if busy:
        out += [
            f"{sections.UNRELIABLE_MARK} **Timings unreliable** (the machine was busy; "
            "rerun on an idle machine before trusting these latencies):",
            "",
            *(f"- {line}" for line in busy),
            "",
        ]

    trained = sections.training(record)
    if trained:
        out += ["## Training steps", "", table(trained), ""]

    fallback = sections.fallback(record)
    if fallback:
        out += ["## INT8 accuracy fallback", "", table(fallback), ""]

    for section in sections.task_sections(record):  # what the record's task adds
        out += [f"## {section.grid.title}", "", table(section.grid), ""]
        out += [section.legend, ""] if section.legend else []

    coverage = sections.coverage(record)
    if coverage:
        out += ["## INT8 coverage", "", table(coverage), ""]
        out += [
            "int8 ops: ops that compute (not quantize / dequantize, not data movement) that run "
            "on int8, as the runtime runs the graph · time: share of the runtime profiler's "
            "time at batch 1 · Q / DQ: quantize / dequantize ops the runtime runs (in the file)",
            "",
        ]

    targets = sections.targets(record)
    out += ["## Targets", "", table(targets) if targets else "No targets set.", ""]

    out += ["## Recommendation", ""]
    rec = sections.recommendation(record)
    out += [f"**{rec[0]}**", "", rec[1]] if rec else ["No recommendation yet."]
    out.append("")
    race = sections.head_to_head(record)
    if race:
        text, grid = race
        out += ["### Head-to-head", "", text, ""] + ([table(grid), ""] if grid else [])
    ship = sections.decisions(record)
    if ship:
        out += ["### What to ship", "", table(ship), ""]
    versus = sections.versus_fp32(record)
    if versus:
        out += ["## Quantized vs FP32", "", versus[0], "", table(versus[1]), ""]

    metrics = sections.metrics(record)
    if metrics:
        out += ["## Metrics", "", table(metrics), ""]

    per_class = sections.per_class(record)
    if per_class:
        out += ["## Per-class accuracy", "", table(per_class), ""]

    if plots:
        out += ["## Plots", ""]
        for path in plots:
            out += [f"![{path.rsplit('/', 1)[-1]}]({path})", ""]

    notes = sections.notes(record)
    out += ["## Notes", ""]
    out += [_note(n) for n in notes] if notes else ["No notes."]
    out.append("")

    out += ["## Environment", ""]
    out += [f"- **{key}**: {value}" for key, value in sections.environment(record)]
    packages = sections.packages(record)
    if packages:
        out.append("- **packages**: " + ", ".join(f"{k} {v}" for k, v in packages))
    out.append("")
    return "\n".join(out)
