"""Imports point one way (DESIGN.md "Layers"): core/ reaches no runtime, report, technique or
engine module, and no technique imports a sibling technique (shared helpers live in
steps/shared.py). Read from the source with ast, every import including those inside
functions; imports only for type checking are not run and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src/modelpress"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` blocks never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
    return found


@pytest.mark.parametrize("path", sorted((SRC / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_nothing_above_it(path: Path) -> None:
    above = ("runtimes", "report", "steps", "engine", "cli", "evaluate")
    bad = [m for m in _imports(path) if m.split(".")[:2] in [["modelpress", a] for a in above]]
    assert not bad, f"core/{path.name} imports {bad}"


TECHNIQUES = ("distill", "prune", "quantize", "qat", "torchscript", "export")


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_no_technique_imports_a_sibling(technique: str) -> None:
    folder = SRC / "steps" / technique
    files = sorted(folder.glob("*.py")) if folder.is_dir() else [SRC / "steps" / f"{technique}.py"]
    siblings = {f"modelpress.steps.{t}" for t in TECHNIQUES if t != technique}
    bad = {
        f"{f.name}: {m}"
        for f in files
        for m in _imports(f)
        if any(m == s or m.startswith(s + ".") for s in siblings)
    }
    assert not bad, f"steps/{technique} imports {sorted(bad)}"
