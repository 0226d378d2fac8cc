"""Library noise the README says is kept off the console stays off unless ``--verbose``: JAX's
fork warning, torchao's import logs (on every load of a quantized ``.pt2``). Ray's INFO lines:
tests/search/test_parallel.py; the C++ banners and sklearn: tests/report/test_report_notes.py."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from modelpress import chatter

SRC = Path(chatter.__file__).parents[1]  # the modelpress under test, for a child process


def test_jax_fork_warning_is_hidden_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    jax = pytest.importorskip("jax", reason="JAX comes with the [tflite] extra")
    jax.devices()  # a backend: from here on JAX warns at every fork
    monkeypatch.setitem(chatter._state, "verbose", False)
    monkeypatch.setenv(chatter.VERBOSE_ENV, "0")  # set_verbose writes it: restored after
    for verbose, expected in ((False, 0), (True, 1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chatter.set_verbose(verbose)
            # a fork with a preexec_fn, as Ray starts its processes
            subprocess.run(["true"], preexec_fn=lambda: None, check=True)
        forks = [w for w in caught if "os.fork() was called" in str(w.message)]
        assert len(forks) == expected, [str(w.message) for w in caught]


def test_importing_torchao_prints_nothing(tmp_path: Path) -> None:
    """What loading a quantized .pt2 does (sources.models imports torchao for its int8
    tensors), in a fresh process as the CLI runs it: torch first, then the CLI's quiet
    settings, then torchao. It logged "Failed to load …/_C_mxfp8…so" (a CUDA kernel library
    a CPU build cannot load) and torch's _pytree deprecation notice."""
    pytest.importorskip("torchao")
    code = (
        "import torch\n"
        "from modelpress.chatter import set_verbose\n"
        "set_verbose(False)\n"
        "import torchao.quantization\n"
        "print('imported')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "imported\n"
    assert done.stderr == "", done.stderr
