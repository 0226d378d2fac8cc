"""Bad inputs that used to end in "internal error", in a silent guess, or only after the
baseline was measured: each is now one line naming the file or field and the fix, exit 2,
before any model work, or an explicit choice with a warning. The CLI runs in-process
(typer's CliRunner), as a user types it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from modelpress.cli.app import app


@contextmanager
def _cwd(path: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cli(*args: str, cwd: Path | None = None) -> Result:
    with _cwd(cwd):
        return CliRunner().invoke(app, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


# ---------------------------------------------------------------- recipe files


def test_a_recipe_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("model: zoo:mlp\ndata: builtin:digits\nname: café\n".encode("latin-1"))
    before = _files(tmp_path)

    result = cli("run", str(recipe), "--out", str(tmp_path / "run"))

    assert_one_line_error(
        result, f"{recipe}:3:10: not UTF-8 text (byte 0xe9)", "save the recipe as UTF-8"
    )
    assert _files(tmp_path) == before
