"""The CLI as tests run it: in this process (``run_cli``, typer's CliRunner: no interpreter
start-up, no torch import, so an error case costs milliseconds) or, where the process itself is
the point (the console script, signals, a fresh interpreter's imports), in a subprocess
(``cli_process``). Both give a ``CompletedProcess``: ``returncode``, ``stdout``, ``stderr``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def in_dir(path: Path | None) -> Iterator[None]:
    """The working directory is ``path`` inside the block (relative --out and --data resolve
    there, as in a shell), and what it was afterwards."""
    before = Path.cwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``modelpress ARGS`` in this process: exit code, stdout and stderr as a subprocess would
    give them. An exception the CLI lets escape (a bug in the test harness's reach, never a user
    error: those are exit codes) is raised here, with its traceback."""
    from typer.testing import CliRunner

    from modelpress.cli.app import app

    with in_dir(cwd):
        result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def cli_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m modelpress.cli.app ARGS`` in a fresh interpreter: for tests whose point is
    the process (its imports, exit codes on signals, a lock held by another PID)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "modelpress.cli.app", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, one line on stderr starting ``error: `` and holding every fragment, no
    traceback: what the CLI owes a user for bad input. The line, for further checks."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
