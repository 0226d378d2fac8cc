"""Human-friendly numbers: the one place that turns record values into text.

Every formatter accepts anything (a record field may be null, absent, NaN or the wrong type)
and answers ``MISSING`` rather than raising, so a report never crashes on a number.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"

_UNITS = ((1e9, "G"), (1e6, "M"), (1e3, "K"))


def number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (what plots use to skip a point)."""
    x = number(value)
    return x if x is not None and math.isfinite(x) else None


def _special(x: float) -> str:
    return "NaN" if math.isnan(x) else ("∞" if x > 0 else "-∞")


def sig(value: Any, digits: int = 3) -> str:
    """``digits`` significant digits without exponent for everyday magnitudes.

    0.0281, 0.970, 28.1, 332; 1,230 at and above 1000; 1.71e-12 below 1e-4.
    """
    x = number(value)
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return _special(x)
    if x == 0:
        return "0"
    x = float(f"{x:.{digits - 1}e}")  # round first so 0.9999 → 1.00, not 1.000
    mag = math.floor(math.log10(abs(x)))
    if mag < -4:
        return f"{x:.{digits - 1}e}"
    if mag >= digits - 1:
        return f"{round(x):,}"
    return f"{x:.{digits - 1 - mag}f}"


def size_mb(size_bytes: Any) -> str:
    """Bytes → megabytes (10^6, as the size targets count them), 3 significant digits."""
    x = number(size_bytes)
    return MISSING if x is None else sig(x / 1e6)


def ms(value: Any) -> str:
    """Milliseconds, 3 significant digits."""
    return sig(value)


def mb(value: Any) -> str:
    """Megabytes already in MB (peak memory), 3 significant digits."""
    return sig(value)


def count(value: Any) -> str:
    """Counts in K / M / G: 950, 6.44K, 166K, 1.50M, 2.30G."""
    x = number(value)
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return _special(x)
    x = float(f"{x:.2e}")  # 999,999 rounds to 1.00M, not 1,000K
    for scale, unit in _UNITS:
        if abs(x) >= scale:
            return sig(x / scale) + unit
    return f"{x:.0f}" if x == int(x) else sig(x)


def ratio(value: Any) -> str:
    """A speedup or size ratio: 2.41×, 25.95×, 259×."""
    x = number(value)
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return _special(x)
    return f"{x:.0f}×" if abs(x) >= 100 else f"{x:.2f}×"


def delta_pt(value: Any) -> str:
    """A change in percentage points, always signed: +0.28 pt, -1.50 pt (never -0.00)."""
    x = number(value)
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return _special(x)
    text = f"{x:+.2f}"
    return ("+0.00" if text == "-0.00" else text) + " pt"


def metric(value: Any) -> str:
    """A metric in [0, 1] (accuracy, AUC, cosine) to 4 decimals: 0.1083."""
    x = number(value)
    if x is None:
        return MISSING
    return f"{x:.4f}" if math.isfinite(x) else _special(x)


def pct(value: Any, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.975 → 97.5%."""
    x = number(value)
    if x is None:
        return MISSING
    return f"{100 * x:.{decimals}f}%" if math.isfinite(x) else _special(x)


def throughput(value: Any, batch: Any = None) -> str:
    """Samples per second with the batch it was measured at: 21.6K @b32."""
    x = number(value)
    if x is None:
        return MISSING
    b = number(batch)
    return count(x) + (f" @b{b:.0f}" if b is not None else "")


def latency_pair(median: Any, p90: Any, batch: Any = None, want_batch: int = 1) -> str:
    """``median / p90`` in ms; the batch is named when it is not the one the column promises."""
    if number(median) is None and number(p90) is None:
        return MISSING
    b = number(batch)
    suffix = f" @b{b:.0f}" if b is not None and b != want_batch else ""
    return f"{ms(median)} / {ms(p90)}{suffix}"


# Marks that text fonts carry (DejaVu, Segoe UI Symbol, Apple Symbols…): an emoji such as ✅
# needs a colour-emoji font, and a browser without one draws an empty box.
MET, MISSED = "✓", "✗"


def check(met: Any) -> str:
    """✓ met, ✗ missed, — not judged."""
    if met is None:
        return MISSING
    return MET if met else MISSED


def text(value: Any) -> str:
    """Any other field as text; None and empty → MISSING."""
    if value is None or value == "":
        return MISSING
    return str(value)
