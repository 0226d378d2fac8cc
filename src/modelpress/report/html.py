"""record.json → report.html: one self-contained page (inline CSS, plots as base64 PNGs)."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from modelpress.report import sections
from modelpress.report.sections import Grid

# Status cells get a class of the same name (coloured in CSS).
STATUSES = {"ok", "degraded", "collapsed", "failed", "skipped"}

# The widest table, the progression (17 columns), fits a 1400 px window: numbers never wrap,
# a notes cell wraps anywhere (a path or an error's token would otherwise widen its column).
CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1400px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: .25em .45em; vertical-align: top; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; white-space: nowrap; }
td.notes { overflow-wrap: anywhere; min-width: 10em; }
tr:nth-child(even) td { background: #fafafa; }
.ok { color: #1a7f37; font-weight: 600; } .degraded { color: #b26b00; font-weight: 600; }
.failed, .collapsed { color: #cf222e; font-weight: 600; } .skipped { color: #777; }
.why { background: #f6f8fa; border-left: 4px solid #DD8452; padding: .6em 1em; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.legend { color: #666; font-size: 12px; } dt { font-weight: 600; float: left; width: 9em; }
dd { margin: 0 0 .3em 10em; }
"""


def table(grid: Grid) -> str:
    status = grid.headers.index("status") if "status" in grid.headers else -1
    notes = {i for i, h in enumerate(grid.headers) if h == "notes"}
    head = "".join(f"<th>{escape(h)}</th>" for h in grid.headers)
    rows = []
    for row in grid.rows:
        cells = []
        for i, text in enumerate(row):
            classes = ["num"] if i in grid.numeric else ["notes"] if i in notes else []
            if i == status and text in STATUSES:
                classes.append(text)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def image(name: str, png: bytes, href: str | None = None) -> str:
    """The PNG inline as a data: URI, alt ``name``; a link to ``href`` (its file) when given."""
    data = base64.b64encode(png).decode("ascii")
    tag = f'<img src="data:image/png;base64,{data}" alt="{escape(name)}">'
    return f'<a href="{escape(href)}">{tag}</a>' if href else tag


def render(record: dict[str, Any], plots: dict[str, bytes] | None = None) -> str:
    """The whole page; ``plots`` maps a file name under plots/ to its PNG bytes."""
    title = escape(sections.title(record))
    body = [f"<h1>{title}</h1>", f"<p>{escape(sections.summary(record))}</p>"]

    compared = sections.techniques(record)
    if compared:
        best = sections.best_techniques(record) or ""
        body += ["<h2>Techniques compared</h2>", table(compared), f"<p><b>{escape(best)}</b></p>"]

    body += ["<h2>Progression</h2>", table(sections.progression(record))]
    memory = sections.memory_legend(record)
    body.append(
        f'<p class="legend">{sections.RECOMMENDED_MARK} recommended · latency at batch 1 '
        "(otherwise @b) · speedup vs the baseline · verification vs each artifact's parent"
        + (f" · {escape(memory)}" if memory else "")
        + "</p>"
    )

    busy = sections.unreliable(record)
    if busy:
        body.append(
            f"<p><b>{sections.UNRELIABLE_MARK} Timings unreliable</b> (the machine was busy):</p>"
            + "<ul>"
            + "".join(f"<li>{escape(line)}</li>" for line in busy)
            + "</ul>"
        )

    for section in sections.task_sections(record):  # what the record's task adds
        body += [f"<h2>{escape(section.grid.title)}</h2>", table(section.grid)]
        if section.legend:
            body.append(f'<p class="legend">{escape(section.legend)}</p>')
    for grid in (sections.fallback(record), sections.coverage(record)):
        if grid:
            body += [f"<h2>{escape(grid.title)}</h2>", table(grid)]

    targets = sections.targets(record)
    body += ["<h2>Targets</h2>", table(targets) if targets else "<p>No targets set.</p>"]

    body.append("<h2>Recommendation</h2>")
    rec = sections.recommendation(record)
    if rec:
        body.append(f'<div class="why"><p><b>{escape(rec[0])}</b></p><p>{escape(rec[1])}</p></div>')
    else:
        body.append("<p>No recommendation yet.</p>")
    race = sections.head_to_head(record)
    if race:
        body += ["<h3>Head-to-head</h3>", f"<p>{escape(race[0])}</p>"]
        body += [table(race[1])] if race[1] else []
    ship = sections.decisions(record)
    if ship:
        body += ["<h3>What to ship</h3>", table(ship)]
    versus = sections.versus_fp32(record)
    if versus:
        body += ["<h2>Quantized vs FP32</h2>", f"<p>{escape(versus[0])}</p>", table(versus[1])]

    for grid in (sections.training(record), sections.metrics(record), sections.per_class(record)):
        if grid:
            body += [f"<h2>{escape(grid.title)}</h2>", table(grid)]

    if plots:
        body.append("<h2>Plots</h2>")
        body += [image(name, png, f"plots/{name}") for name, png in plots.items()]

    body.append("<h2>Notes</h2>")
    notes = sections.notes(record)
    items = [
        f"<li><b>{escape(n.source)}</b>{' error' if n.kind == 'error' else ''}: "
        + (f"<pre>{escape(n.text)}</pre>" if "\n" in n.text.strip() else escape(n.text))
        + "</li>"
        for n in notes
    ]
    body.append(f"<ul>{''.join(items)}</ul>" if notes else "<p>No notes.</p>")

    body.append("<h2>Environment</h2>")
    packages = ", ".join(f"{k} {v}" for k, v in sections.packages(record)) or "—"
    pairs = [*sections.environment(record), ("packages", packages)]
    body.append(
        "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>"
    )

    return page(title, body)


def page(title: str, body: list[str]) -> str:
    """A whole page around ``body`` (HTML parts) with the report's CSS; ``title`` escaped."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
