"""Run a command and measure its own peak resident memory; standard library only, so it stays
small.

    python benchmarks/measure_child.py RESULT.json [--phase-starts PATH] -- COMMAND ...

Why a launcher: a child's ``ru_maxrss`` starts from its parent's high-water mark (Linux records
the old address space's peak at ``exec``, and fork and vfork both start from the parent's), so
a command started straight from a benchmark that has trained a model reports the benchmark's
peak, whatever the command does. Started from this small process, it reports its own.

``--phase-starts PATH``: when PATH appears (``modelpress video`` opens ``--out``'s ``.tmp`` the
moment scoring starts), the command's high-water mark is read and reset (``/proc/PID/
clear_refs``, 5), so the result holds the peak before that moment, the resident memory at it,
and the peak after it apart. Writes RESULT.json: exit code, wall seconds, CPU seconds, and
those figures in MB (``peak_mb`` the whole run's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MB (from KiB)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def main() -> None:
    args = sys.argv[1:]
    if "--" not in args or len(args) < 3:
        sys.exit("usage: measure_child.py RESULT.json [--phase-starts PATH] -- COMMAND ...")
    split = args.index("--")
    result, options, command = Path(args[0]), args[1:split], args[split + 1 :]
    phase = Path(options[1]) if options[:1] == ["--phase-starts"] else None
    before = at_start = None
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    while phase is not None and proc.poll() is None:
        if phase.exists():
            try:
                status = _status_mb(proc.pid)
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
                before, at_start = status["VmHWM"], status["VmRSS"]
            except (OSError, KeyError):  # it ended in between
                pass
            break
        time.sleep(0.002)
    # wait4, not proc.wait: this child's own rusage
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    after = usage.ru_maxrss / 1024  # KiB on Linux; since the reset, if there was one
    figures = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": after if before is None else max(before, after),
        "peak_before_phase_mb": before,
        "rss_at_phase_start_mb": at_start,
        "peak_in_phase_mb": None if before is None else after,
    }
    result.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
