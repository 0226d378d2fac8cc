"""What libraries print on their own, kept off the console unless asked for (``--verbose``).

Python-side chatter (warnings, log records) is silenced at its source by ``quiet_libraries``.

C++ libraries write banners straight to file descriptor 2, past ``sys.stderr`` and ``logging``:
absl ("WARNING: All log messages before absl::InitializeLog() …" and ``I0000 …`` lines),
oneDNN ("oneDNN custom operations are on …") and XNNPACK ("Created TensorFlow Lite XNNPACK
delegate for CPU."). The env switches (TF_CPP_MIN_LOG_LEVEL, GLOG_minloglevel) do not reach
litert-torch's bundled converter, so ``native_banners()`` points fd 2 at a temporary file for a
block and writes back every line that is not such a banner: errors still show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

VERBOSE_ENV = "MODELPRESS_VERBOSE"  # set by --verbose, so the processes modelpress starts agree
_state = {"verbose": os.environ.get(VERBOSE_ENV) == "1"}
_QUIET_LOGGERS = ("torchao", "torch.utils._pytree")

BANNER = re.compile(
    r"All log messages before absl::InitializeLog\(\)"
    r"|^[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"  # absl / glog INFO and WARNING lines
    r"|oneDNN custom operations are on"
    r"|XNNPACK delegate"
)


def set_verbose(on: bool) -> None:
    """``--verbose``: let every library speak. Otherwise what they say on their own that a user
    cannot act on is kept off (``quiet_libraries``)."""
    _state["verbose"] = on
    if on:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)
    if on:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    else:
        quiet_libraries()


def quiet_libraries() -> None:
    """Python-side chatter, silenced where it is made (before the library is imported, so it
    holds for what their import says):

    - sklearn's warnings (an ill-defined precision on a tiny split);
    - JAX's "os.fork() was called …" RuntimeWarning: JAX (imported by litert-torch) warns at
      every fork once it has a backend, and Ray starts its processes with one;
    - torchao's "Failed to load …/_C_mxfp8…so" (its CUDA kernel libraries, which a CPU build
      cannot load) and torch's _pytree deprecation notice about torchao's enums, both logged
      on every import of torchao: loading a quantized ``.pt2`` imports it;
    - Ray's INFO lines: ``search.parallel`` starts Ray at ``ray_logging_level()``.
    """
    warnings.filterwarnings("ignore", module=r"sklearn(\.|$)")
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def ray_logging_level() -> int:
    """The level Ray's driver logs at: its INFO lines (a local instance started, an auth token
    saved) and notices only with ``--verbose``; its errors always."""
    return logging.INFO if verbose() else logging.ERROR


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
