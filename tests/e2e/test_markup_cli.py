"""Bracketed text reaches the terminal as written: rich must not read `[tflite]`, `a[b]` or
`[b]` in a message, a path or a table cell as markup and drop it."""

import os
import sys
from pathlib import Path

import pytest

from helpers.cli import assert_one_line_error, run_cli

MISSING_EXTRA = "the tflite format needs the [tflite] extra: pip install 'modelpress[tflite]'"


@pytest.fixture(scope="module")
def failed_tflite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(run directory, stdout) of `modelpress export --format tflite` into runs/a[b] with the
    [tflite] extra made unimportable, as on an install without it: in this process (the CLI runs
    in-process) and in any process the run starts (PYTHONPATH)."""
    root = tmp_path_factory.mktemp("markup")
    blocked = root / "blocked"
    blocked.mkdir()
    (blocked / "litert_torch.py").write_text("raise ImportError('not installed (test)')\n")
    out = root / "runs" / "a[b]"
    with pytest.MonkeyPatch.context() as mp:
        path = [str(blocked), *filter(None, [os.environ.get("PYTHONPATH")])]
        mp.setenv("PYTHONPATH", os.pathsep.join(path))
        mp.setitem(sys.modules, "litert_torch", None)  # `import litert_torch` raises ImportError
        result = run_cli(
            "export",
            "zoo:mlp",
            "--data",
            "builtin:digits",
            "--format",
            "tflite",
            "--out",
            str(out),
        )
    assert result.returncode == 1, result.stdout + result.stderr  # a step failed, the run ended
    assert "Traceback" not in result.stderr
    return out, result.stdout


def _line(stdout: str, start: str) -> str:
    found = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith(start)]
    assert len(found) == 1, stdout
    return found[0]


def test_a_failed_step_names_the_extra_to_install(failed_tflite: tuple[Path, str]) -> None:
    _, stdout = failed_tflite
    assert _line(stdout, "failed export-tflite").endswith(f"— {MISSING_EXTRA}")


def test_a_table_cell_keeps_its_brackets(failed_tflite: tuple[Path, str]) -> None:
    _, stdout = failed_tflite
    # the progression's notes cell (cut at its width); cells already went in as Text: a guard
    row = _line(stdout, "1. export-tflite")
    assert "failed" in row and "the tflite format needs the [tflite] extra" in row


def test_an_out_path_with_brackets_is_printed_as_given(failed_tflite: tuple[Path, str]) -> None:
    out, stdout = failed_tflite
    assert (out / "record.json").is_file() and (out / "report.html").is_file()
    assert _line(stdout, "run directory:") == (
        f"run directory: {out}  (report.md, report.html, record.json)"
    )


def test_a_one_line_error_keeps_its_brackets(tmp_path: Path) -> None:
    weights = tmp_path / "w[b].pt"
    assert_one_line_error(
        run_cli("bench", "zoo:mlp", "--data", "builtin:digits", "--weights", str(weights)),
        f"{weights}: weights file not found",
    )
    assert_one_line_error(
        run_cli("bench", "zoo:mlp", "--data", "builtin:digits", "--batch-sizes", "[b]"),
        "--batch-sizes '[b]': integers separated by commas",
    )
