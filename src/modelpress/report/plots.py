"""record.json → PNG plots (bytes). matplotlib is imported here only, with the Agg backend.

overview.png           size, latency (median, p90 whisker) and primary metric per artifact
latency_vs_metric.png  the trade-off, each point named in a legend, the recommended one a star
confusion_matrix.png   the recommended artifact's confusion matrix (classification)
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from modelpress.report import format as fmt
from modelpress.report import sections
from modelpress.tasks import find_task

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
PLAIN, HIGHLIGHT = "#4C72B0", "#DD8452"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported here, on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Figure) -> bytes:
    """``fig`` laid out and rendered as PNG bytes at the report's DPI, then closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    pyplot().close(fig)
    return buf.getvalue()


def _bars(
    ax: Axes, bars: list[tuple[str, str, float | None, float | None]], title: str, ylabel: str
) -> None:
    """Bars of (name, colour, value, p90-or-None); artifacts with a null value are left out."""
    bars = [b for b in bars if b[2] is not None]
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if not bars:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        return
    heights = [b[2] or 0.0 for b in bars]
    # Whiskers from the median up to p90 only (none where p90 is missing).
    up = [
        max((b[3] if b[3] is not None else h) - h, 0.0) for b, h in zip(bars, heights, strict=True)
    ]
    ax.bar(
        range(len(bars)),
        heights,
        color=[b[1] for b in bars],
        yerr=[[0.0] * len(up), up],
        capsize=4 if any(up) else 0,
    )
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)


def overview(record: dict[str, Any]) -> bytes:
    key = sections.primary_key(record)
    label = sections.metric_label(key)
    rec = sections.recommended(record)
    size, latency, quality = [], [], []
    for e in sections.entries(record):
        name, color = str(e.get("name")), HIGHLIGHT if e is rec else PLAIN
        lat = sections.latency_at(e)
        size.append((name, color, _mb(e.get("size_bytes")), None))
        latency.append((name, color, fmt.finite(lat.get("median")), fmt.finite(lat.get("p90"))))
        quality.append((name, color, fmt.finite(sections.metrics_of(e).get(key)), None))
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    _bars(axes[0], size, "Size on disk", "size (MB)")
    _bars(axes[1], latency, "Latency at batch 1 (median, whisker to p90)", "latency (ms)")
    _bars(axes[2], quality, label, f"{label} on validation data")
    if rec is not None:
        fig.suptitle(f"{record.get('name') or 'run'} — recommended: {rec.get('name')} (orange)")
    return png(fig)


# One marker and colour per artifact, named in the legend beside the axes: labels written next
# to the points overlapped wherever artifacts measure alike (an export and its parent often do).
MARKERS = "osD^vPXhp<>"


def latency_vs_metric_figure(record: dict[str, Any]) -> Figure | None:
    """The trade-off, laid out: one point per artifact, each named in a legend outside the
    axes (the recommended one a large star); None when no artifact has both figures."""
    key = sections.primary_key(record)
    rec = sections.recommended(record)
    points = []
    for e in sections.entries(record):
        x = fmt.finite(sections.latency_at(e).get("median"))
        y = fmt.finite(sections.metrics_of(e).get(key))
        if x is not None and y is not None:
            points.append((x, y, str(e.get("name")), e is rec))
    if not points:
        return None
    plt = pyplot()
    # tab10 without its orange, which marks the recommended artifact
    colours = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 1]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, (x, y, name, is_rec) in enumerate(points):
        ax.scatter(
            [x],
            [y],
            s=170 if is_rec else 55,
            color=HIGHLIGHT if is_rec else colours[i % len(colours)],
            marker="*" if is_rec else MARKERS[i % len(MARKERS)],
            zorder=4 if is_rec else 3,
            alpha=0.85,
            edgecolors="black",
            linewidths=0.5,
            label=name + (" (recommended)" if is_rec else ""),
        )
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        ncol=1 + len(points) // 26,  # a second column past what one holds at this height
        frameon=False,
    )
    xs = [p[0] for p in points]
    if min(xs) > 0 and max(xs) / min(xs) > 10:
        ax.set_xscale("log")
    ax.set_title("Latency vs quality (faster is left, better is up)")
    ax.set_xlabel("latency at batch 1, median (ms)")
    ax.set_ylabel(f"{sections.metric_label(key)} (validation)")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    fig.tight_layout()  # the legend beside the axes counts: nothing is cut off
    return fig


def latency_vs_metric(record: dict[str, Any]) -> bytes | None:
    """latency_vs_metric.png; None when no artifact has both a latency and a metric."""
    fig = latency_vs_metric_figure(record)
    return None if fig is None else png(fig)


def confusion_matrix(record: dict[str, Any]) -> bytes | None:
    """The recommended artifact's (else the baseline's) matrix; None without one."""
    entry = sections.recommended(record) or record.get("baseline") or {}
    matrix = sections.metrics_of(entry).get("confusion_matrix")
    rows = [[fmt.finite(v) or 0.0 for v in row] for row in matrix or [] if isinstance(row, list)]
    if not rows or any(len(r) != len(rows) for r in rows):
        return None
    n = len(rows)
    # Colour by row share (recall per class) so rare classes read as clearly as common ones.
    shares = [[v / sum(r) if sum(r) else 0.0 for v in r] for r in rows]
    plt = pyplot()
    side = min(3.0 + 0.35 * n, 12)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class", fraction=0.046, pad=0.04)
    if n <= 20:
        for i, r in enumerate(rows):
            for j, v in enumerate(r):
                color = "white" if shares[i][j] > 0.5 else ("black" if v else "#bbbbbb")
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color=color)
    ticks = list(range(n)) if n <= 30 else list(range(0, n, max(n // 15, 1)))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix — {entry.get('name')} (counts)")
    return png(fig)


def _task_plots(record: dict[str, Any]) -> tuple[str, ...]:
    """The figures the record's task has numbers for (``Task.plots``)."""
    task = find_task(record.get("task"))
    return task.plots if task else ()


def render(record: dict[str, Any]) -> dict[str, bytes]:
    """{file name: PNG bytes} for every plot the record has the numbers for."""
    out = {"overview.png": overview(record)}
    made = {
        "latency_vs_metric.png": latency_vs_metric(record),
        "confusion_matrix.png": confusion_matrix(record)
        if "confusion_matrix" in _task_plots(record)
        else None,
    }
    out.update({name: image for name, image in made.items() if image is not None})
    return out


def _mb(size_bytes: Any) -> float | None:
    x = fmt.finite(size_bytes)
    return None if x is None else x / 1e6
