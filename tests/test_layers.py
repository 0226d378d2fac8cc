"""The architecture as a test (shared/DESIGN.md "Layers"): imports point down the layer table
only, every import kind counted (module level, inside functions, under ``TYPE_CHECKING``), with
no exceptions; no technique imports a sibling technique; a task name is asked only inside
``tasks/``; runtimes are opened only by the engine, the runtimes and deploy; no module is over
450 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src/modelpress"

# Top to bottom; a package may import its own level's other packages and anything below.
LAYERS: list[tuple[str, ...]] = [
    ("cli", "demo", "__init__", "api"),  # the typer app, the demo, the Python API
    ("search", "deploy"),  # searches over graphs (Ray); cascades and video
    ("engine",),  # context, graph runner, record, resume, THE measuring path
    ("steps", "training", "report"),  # techniques, the training loop, views of the record
    ("tasks", "runtimes"),  # what outputs mean; run artifacts, every output
    ("evaluate",),  # pure numbers: metrics, comparisons, targets
    ("sources", "zoo"),  # load models and data
    # recipe, registries, StepContext protocol, artifact, run directory, formats x precisions;
    # ``techniques``: the techniques compare applies, as recipe steps (data, like a recipe)
    ("core", "techniques"),
    ("errors", "extras", "chatter"),  # leaf modules every layer may use
]
LEVEL = {name: len(LAYERS) - i for i, names in enumerate(LAYERS) for name in names}
TECHNIQUES = ("distill", "prune", "quantize", "qat", "torchscript", "export")
MAX_LINES = 450


def _unit(path: Path) -> str:
    """The layer unit a file belongs to: its top package, or its own name at the top."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, at any depth and under any condition."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; name the module in full")
    return found


FILES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert not {_unit(f) for f in FILES} - LEVEL.keys()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    me = _unit(path)
    up = set()
    for module in _imports(path):
        parts = module.split(".")
        if parts[0] != "modelpress" or len(parts) < 2 or parts[1] not in LEVEL:
            continue  # another library, or a name imported from the package root
        if parts[1] != me and LEVEL[parts[1]] > LEVEL[me]:
            up.add(".".join(parts[:3]))
    assert not up, f"{path.relative_to(SRC)} ({me}) imports above its layer: {sorted(up)}"


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


def test_a_task_name_is_asked_only_inside_tasks() -> None:
    asked = re.compile(
        r"""\btask(?:\.name|_name)?\s*(?:==|!=|\bin\b)|["'](?:binary|detection|classification|fidelity)["']\s*(?:==|!=)"""
    )
    bad = [
        f"{f.relative_to(SRC)}:{i}: {line.strip()}"
        for f in FILES
        if _unit(f) != "tasks"
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if asked.search(line)
    ]
    assert not bad, "\n".join(bad)


def test_runtimes_are_opened_only_by_the_engine_runtimes_and_deploy() -> None:
    bad = [
        str(f.relative_to(SRC))
        for f in FILES
        if _unit(f) not in ("engine", "runtimes", "deploy")
        and any(m.endswith("runtime_for") for m in _imports(f))
    ]
    assert not bad, f"call runtime_for through the engine: {bad}"


def test_no_module_is_over_450_lines() -> None:
    sizes = sorted(((len(f.read_text().splitlines()), f) for f in FILES), reverse=True)
    print("largest:", ", ".join(f"{f.relative_to(SRC)} {n}" for n, f in sizes[:5]))
    over = [f"{f.relative_to(SRC)}: {n} lines" for n, f in sizes if n > MAX_LINES]
    assert not over, f"split by idea: {over}"
