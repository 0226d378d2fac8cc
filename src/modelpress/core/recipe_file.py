"""A recipe file read into plain data: UTF-8 YAML or JSON, errors with line and column,
relative paths made absolute against the file's folder, and ``--set key.path=value``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from modelpress.errors import RecipeError, first_line

# Step fields that name a model source or a weights file (teachers, students).
STEP_MODELS = ("teacher", "student")
STEP_WEIGHTS = ("teacher_weights", "student_weights")


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative file paths absolute against the recipe's folder."""

    def fix(path: str) -> str:
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    def fix_model(model: Any) -> Any:
        if not isinstance(model, str) or model.startswith("zoo:") or model == "input":
            return model
        head, sep, tail = model.rpartition(":")
        if sep and head.endswith(".py"):
            return f"{fix(head)}:{tail}"
        if model.endswith((".pt", ".pth", ".pt2", ".ts", ".onnx", ".tflite")):
            return fix(model)
        return model

    out = dict(data)
    if isinstance(out.get("weights"), str):
        out["weights"] = fix(out["weights"])
    if "model" in out:
        out["model"] = fix_model(out["model"])
    if isinstance(out.get("steps"), list):
        steps = []
        for step in out["steps"]:
            if isinstance(step, dict):
                step = dict(step)
                for key in STEP_MODELS:
                    if key in step:
                        step[key] = fix_model(step[key])
                for key in STEP_WEIGHTS:
                    if isinstance(step.get(key), str):
                        step[key] = fix(step[key])
            steps.append(step)
        out["steps"] = steps
    data_cfg = out.get("data")
    source = data_cfg if isinstance(data_cfg, str) else (data_cfg or {}).get("source")
    if isinstance(source, str) and source.startswith(("folder:", "npz:", "yolo:", "coco:")):
        kind, path = source.split(":", 1)
        if kind == "coco" and ":" in path:  # coco:ANNOTATIONS.json:IMAGES
            ann, images = path.split(":", 1)
            path = f"{fix(ann)}:{fix(images)}"
        else:
            path = fix(path)
        new = f"{kind}:{path}"
        out["data"] = new if isinstance(data_cfg, str) else {**data_cfg, "source": new}
    if isinstance(out.get("out"), str):
        out["out"] = fix(out["out"])
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML: numbers, lists, true/false)."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set '{item}': write key.path=value, e.g. evaluate.repeats=20")
        value = yaml.safe_load(raw) if raw else ""
        node: Any = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise RecipeError(
                        f"--set {key}: '{part}' is not an index of a {len(node)}-item list"
                    )
                part_key: Any = int(part)
            elif isinstance(node, dict):
                part_key = part
            else:
                raise RecipeError(f"--set {key}: '{'.'.join(parts[:i])}' is not a mapping or list")
            if last:
                node[part_key] = value
            else:
                if isinstance(node, dict) and part_key not in node:
                    node[part_key] = {}
                node = node[part_key]
    return data


def _yaml_error(path: Path, e: yaml.YAMLError) -> str:
    """``FILE:LINE:COLUMN: not valid YAML (problem, context)``, lines and columns from 1."""
    mark = getattr(e, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
    context, start = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and start is not None:
        context += f" from line {start.line + 1}, column {start.column + 1}"
    return f"{where}: not valid YAML ({problem}{f', {context}' if context else ''})"


def _recipe_text(path: Path) -> str:
    """The recipe file's text, read as UTF-8 (what YAML and JSON files are); a file in another
    encoding (Latin-1 from an old editor) or one that cannot be read is one line naming it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecipeError(f"{path}: cannot be read ({first_line(e)})") from None
    try:
        return raw.decode("utf-8-sig")  # a BOM from a Windows editor is fine
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise RecipeError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the "
            "recipe as UTF-8"
        ) from None


def read_recipe_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    text = _recipe_text(path)
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise RecipeError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    except yaml.YAMLError as e:
        raise RecipeError(_yaml_error(path, e)) from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys (model, data, steps, ...)")
    return resolve_paths(data, path.parent.resolve())
