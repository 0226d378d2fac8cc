"""Keep the libraries' own chatter out of the CLI: one place for it.

ORT's calibrators and nncf print progress to stdout, torchao logs missing CUDA kernels on
import, the torch.onnx exporter prints its stages, litert-torch draws a progress tree and warns
at length. Inside ``quiet()`` stdout is captured, logging below ERROR is off and warnings are
ignored, and C++ banners on fd 2 (absl, oneDNN, XNNPACK) are dropped; what a step needs to
say goes into the record instead. ``modelpress --verbose`` lets all of it through.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator

from modelpress.chatter import native_banners, verbose


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    if verbose():
        yield
        return
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            native_banners(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
