"""Optional extras (``[tflite]``, ``[openvino]``): import on use, or say how to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from modelpress.errors import RuntimeUnavailableError


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``; when it is missing, a one-line error naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RuntimeUnavailableError(
            f"{what} needs the [{extra}] extra: pip install 'modelpress[{extra}]'"
        ) from None
