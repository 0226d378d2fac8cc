"""Keep the libraries' own chatter out of the CLI: one place for it.

ORT's calibrators and nncf print progress to stdout, torchao logs missing CUDA kernels on
import, the torch.onnx exporter prints its stages, litert-torch draws a progress tree and warns
at length. Inside ``quiet()`` stdout is captured, logging below ERROR is off and warnings are
ignored; what a step needs to say goes into the record instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
