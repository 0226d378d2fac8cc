"""A search space of whole pipelines, written as lists of the registered steps' fields.

    space:
      distill: {student: [none, zoo:resnet18], student_kwargs: [{width_mult: 0.5}]}
      prune:   {ratio: [0, 0.3, 0.5], epochs: 3}
      export:  {format: [onnx], precision: [fp32, fp16, int8]}

Each step type takes a mapping of its fields to a value or a list of values; a step's options
are the product of its fields' lists. ``none`` (or null) for any field, or a prune ``ratio`` of
0, leaves the step out of that branch. A pipeline is one option per step type, in a fixed
order — distill, prune, qat, quantize, torchscript, export — each step starting from the one
before it (the baseline first). Pipelines that share a prefix share its nodes: their steps get
ids from their lineage, so a student is distilled once, then pruned at each ratio, then
exported per format.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass, field
from typing import Any

from modelpress.core.rundir import stable_hash
from modelpress.errors import ModelpressError

ORDER = ("distill", "prune", "qat", "quantize", "torchscript", "export")
TRAINED = ("distill", "prune", "qat")  # steps that train: the costly ones
SKIP = ("none", None)


class SpaceError(ModelpressError):
    """A search space that cannot be expanded as written."""


@dataclass(frozen=True)
class Node:
    """One step of a pipeline, with the id its lineage gives it."""

    id: str
    parent: str  # the node it starts from ("baseline" first)
    step: dict[str, Any]  # the recipe step (type, id, from, fields)


@dataclass
class Pipeline:
    """One trial: the nodes from the baseline to its candidate (the last node)."""

    choice: dict[str, dict[str, Any] | None]  # per step type its fields, None when left out
    nodes: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.nodes[-1].id if self.nodes else "baseline"

    @property
    def trained(self) -> int:
        return sum(1 for n in self.nodes if n.step["type"] in TRAINED)

    def describe(self) -> str:
        parts = []
        for kind in ORDER:
            fields = self.choice.get(kind)
            if fields is not None:
                shown = ", ".join(f"{k}={_short(v)}" for k, v in fields.items())
                parts.append(f"{kind}({shown})")
        return " → ".join(parts) or "baseline"


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {x}" for k, x in v.items()) + "}"
    return str(v)


def _values(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else [v]


def check(space: Any, where: str = "optimize.space") -> dict[str, dict[str, list[Any]]]:
    """The space as {step type: {field: [values]}}, every step type and field known (close
    names suggested), every option a valid step config; a SpaceError naming the field if not."""
    from pydantic import ValidationError

    from modelpress.core.registry import config_class

    if not isinstance(space, dict) or not space:
        raise SpaceError(
            f"{where}: empty; give at least one step with lists of its fields, e.g. "
            "export: {format: [onnx], precision: [fp32, int8]}"
        )
    out: dict[str, dict[str, list[Any]]] = {}
    for kind, fields in space.items():
        if kind not in ORDER:
            close = difflib.get_close_matches(str(kind), ORDER, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SpaceError(
                f"{where}.{kind}: not a step a search chains{hint}; use {', '.join(ORDER)}"
            )
        cls = config_class(kind)
        assert cls is not None
        if not isinstance(fields, dict) or not fields:
            raise SpaceError(f"{where}.{kind}: give its fields as a mapping, e.g. ratio: [0.3]")
        known = list(
            dict.fromkeys(
                f
                for variant in cls.variants().values()  # export: any format's keys
                for f in variant.model_fields
                if f not in ("type", "id", "name", "from_")
            )
        )
        for name, values in fields.items():
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=2)
                hint = f" (did you mean {' or '.join(close)}?)" if close else ""
                raise SpaceError(
                    f"{where}.{kind}.{name}: `{kind}` has no field {name!r}{hint}; its fields "
                    f"are {', '.join(known)}"
                )
            if not _values(values):
                raise SpaceError(f"{where}.{kind}.{name}: an empty list; give one value at least")
        out[kind] = {k: _values(v) for k, v in fields.items()}
        for option in options(out[kind], kind):
            if option is None:
                continue
            try:
                cls.model_validate({"type": kind, **option})
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise SpaceError(
                    f"{where}.{kind}.{loc}: {err['msg']} (in the option {_short(option)})"
                ) from None
    return out


def options(fields: dict[str, list[Any]], kind: str | None = None) -> list[dict[str, Any] | None]:
    """A step's options: the product of its fields' values; None (once) for "left out". Given
    the step's ``kind``, an option keeps only the keys its variant takes (an export's ``opset``
    goes with its ONNX options, not its TFLite ones)."""
    from modelpress.core.registry import config_class

    cls = config_class(kind) if kind else None
    out: list[dict[str, Any] | None] = []
    names = list(fields)
    for combo in itertools.product(*(fields[n] for n in names)):
        option = dict(zip(names, combo, strict=True))
        skip = any(v in SKIP for v in option.values() if not isinstance(v, dict | list))
        if skip or (option.get("ratio") == 0 and "ratio" in option):
            if None not in out:
                out.append(None)
            continue
        if cls is not None:
            takes = cls.variant({"type": kind, **option}).model_fields
            option = {k: v for k, v in option.items() if k in takes}
        if option not in out:
            out.append(option)
    return out


def _label(kind: str, fields: dict[str, Any]) -> str:
    """A short readable id stem for a node."""
    if kind == "export":
        return f"{fields.get('format', 'onnx')}-{fields.get('precision', 'fp32')}"
    if kind == "prune":
        return f"prune{fields['ratio']}" if "ratio" in fields else "prune"
    if kind == "quantize":
        return f"quantize-{fields.get('method', 'static')}"
    return kind


def _node(kind: str, fields: dict[str, Any], parent: str, lineage: list[Any]) -> Node:
    ident = f"{_label(kind, fields)}-{stable_hash(lineage)[:6]}"
    return Node(ident, parent, {"type": kind, "id": ident, "from": parent, **fields})


def pipelines(space: dict[str, dict[str, list[Any]]]) -> list[Pipeline]:
    """Every pipeline of the space (duplicates removed), cheapest first: those that train
    nothing, then fewer training steps, then the rest in the space's order."""
    kinds = [k for k in ORDER if k in space]
    per_kind = [options(space[k], k) for k in kinds]
    seen: set[str] = set()
    out: list[Pipeline] = []
    for combo in itertools.product(*per_kind):
        choice = dict(zip(kinds, combo, strict=True))
        nodes: list[Node] = []
        parent, lineage = "baseline", []
        for kind in kinds:
            fields = choice[kind]
            if fields is None:
                continue
            if kind == "export":  # defaults explicit: one computation, one node id
                fields = {"format": "onnx", "precision": "fp32", **fields}
            if kind == "export" and fields["format"] == "onnx":
                precision = fields["precision"]
                if precision != "fp32":  # ORT quantizes / converts the FP32 ONNX, as compare does
                    ref = {"format": "onnx", "precision": "fp32"}
                    ref |= {k: v for k, v in fields.items() if k in ("opset", "dynamic_batch")}
                    lineage = [*lineage, ["export", ref]]
                    nodes.append(_node("export", ref, parent, lineage))
                    parent = nodes[-1].id
            lineage = [*lineage, [kind, fields]]
            nodes.append(_node(kind, fields, parent, lineage))
            parent = nodes[-1].id
        if not nodes:
            continue  # the baseline itself: measured anyway
        key = nodes[-1].id
        if key in seen:
            continue
        seen.add(key)
        out.append(Pipeline(choice, nodes))
    order = {id(p): i for i, p in enumerate(out)}
    return sorted(
        out,
        key=lambda p: (
            p.trained,
            "distill" in p.choice and bool(p.choice["distill"]),
            order[id(p)],
        ),
    )
