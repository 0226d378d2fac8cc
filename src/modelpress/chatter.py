"""What libraries print on their own, kept off the console unless asked for (``--verbose``).

C++ libraries write banners straight to file descriptor 2, past ``sys.stderr`` and ``logging``:
absl ("WARNING: All log messages before absl::InitializeLog() …" and ``I0000 …`` lines),
oneDNN ("oneDNN custom operations are on …") and XNNPACK ("Created TensorFlow Lite XNNPACK
delegate for CPU."). The env switches (TF_CPP_MIN_LOG_LEVEL, GLOG_minloglevel) do not reach
litert-torch's bundled converter, so ``native_banners()`` points fd 2 at a temporary file for a
block and writes back every line that is not such a banner: errors still show.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

_state = {"verbose": False}

BANNER = re.compile(
    r"All log messages before absl::InitializeLog\(\)"
    r"|^[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"  # absl / glog INFO and WARNING lines
    r"|oneDNN custom operations are on"
    r"|XNNPACK delegate"
)


def set_verbose(on: bool) -> None:
    """``--verbose``: let every library speak. Otherwise sklearn's warnings are ignored too."""
    _state["verbose"] = on
    if not on:
        warnings.filterwarnings("ignore", module=r"sklearn(\.|$)")


def verbose() -> bool:
    return _state["verbose"]


def drop_banners(text: str) -> str:
    """``text`` without the lines that are library banners."""
    return "".join(ln for ln in text.splitlines(keepends=True) if not BANNER.search(ln))


@contextlib.contextmanager
def native_banners() -> Iterator[None]:
    """Within the block, what is written to fd 2 is held back, then written out without the
    banner lines (everything when verbose)."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to redirect
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            rest = drop_banners(held.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
