"""Full-INT8 TFLite of a MobileNet-style model runs in int8 end to end (issue 8).

litert-torch's own PT2E quantizer left every squeeze-excite's hardsigmoid and most residual adds
in float (DEQUANTIZE / ADD / MUL / QUANTIZE islands) and its int8 HARD_SWISH splits XNNPACK's
graph into 20 pieces: the INT8 file ran slower than FP32. These tests read the converted file.
"""

from __future__ import annotations

import collections
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline

pytest.importorskip("litert_torch", reason="the [tflite] extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the [tflite] extra is not installed")

SHAPE = "1,3,32,32"
DATA = {"source": "builtin:digits", "max_samples": 300}


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zoo:mobilenetv3_small (width 0.5: hardswish, squeeze-excite with hardsigmoid, residual
    adds, global average pooling) trained briefly on digits at 32×32×3."""
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    out = tmp_path_factory.mktemp("mnv3") / "mnv3.pt"
    recipe = build_recipe(
        {
            "model": "zoo:mobilenetv3_small",
            "model_kwargs": {"width_mult": 0.5},
            "data": DATA,
            "input_shape": SHAPE,
        }
    )
    train_and_save(recipe, TrainConfig(epochs=8, lr=5e-3, seed=0), out)
    return out


@pytest.fixture(scope="module")
def record(mobilenet: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    steps = [
        {"type": "export", "format": "tflite"},
        # the stem pinned to int8: these tests check that everything can run in int8
        {"type": "export", "format": "tflite", "precision": "int8", "stem": "int8"},
        {"type": "export", "format": "tflite", "precision": "int8", "stem": "fp32",
         "name": "tflite-int8-float-stem"},
        {"type": "export", "format": "tflite", "precision": "int8", "name": "tflite-int8-auto"},
    ]  # fmt: skip
    recipe = tiny_recipe(
        str(mobilenet),
        data=DATA,
        input_shape=SHAPE,
        steps=steps,
        evaluate={"warmup": 1, "repeats": 5, "batch_sizes": [1]},
    )
    out = tmp_path_factory.mktemp("run") / "run"
    rec = pipeline.run(build_recipe(recipe), out=out)
    rec["out"] = out
    return rec


def _ops(path: Path) -> list[tuple[str, list[str], list[str], bool, bool]]:
    """(op, input dtypes, output dtypes, reads a graph input, writes a graph output) of each of
    the model's own ops (no delegate applied), read with the LiteRT interpreter itself."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    dtype = {d["index"]: np.dtype(d["dtype"]).name for d in it.get_tensor_details()}
    graph_in = {d["index"] for d in it.get_input_details()}
    graph_out = {d["index"] for d in it.get_output_details()}
    return [
        (
            op["op_name"],
            [dtype[i] for i in op["inputs"] if i in dtype],
            [dtype[i] for i in op["outputs"] if i in dtype],
            any(i in graph_in for i in op["inputs"]),
            any(i in graph_out for i in op["outputs"]),
        )
        for op in it._get_ops_details()
    ]


def test_every_op_of_the_int8_mobilenet_runs_in_int8(record: dict) -> None:
    arts = {a["name"]: a for a in record["artifacts"]}
    assert arts["tflite-int8"]["status"] == "ok"
    ops = _ops(record["out"] / "artifacts" / "model-int8.tflite")
    kinds = collections.Counter(op for op, *_ in ops)
    # hardswish and hardsigmoid became ADD / MUL, the pools MEAN, all of them integer
    assert kinds["ADD"] > 0 and kinds["MUL"] > 0 and kinds["MEAN"] > 0
    in_float = [op for op, _, outs, *_ in ops if any(d.startswith("float") for d in outs)]
    assert in_float == []
    assert {d for _, _, outs, *_ in ops for d in outs} <= {"int8", "int32"}
    # no QUANTIZE / DEQUANTIZE except at the graph's input / output (the converter folds those)
    inner = [
        (op, at_in, at_out)
        for op, _, _, at_in, at_out in ops
        if (op == "QUANTIZE" and not at_in) or (op == "DEQUANTIZE" and not at_out)
    ]
    assert inner == []


def test_the_record_says_the_graph_is_int8_and_in_one_xnnpack_piece(record: dict) -> None:
    details = next(a for a in record["artifacts"] if a["name"] == "tflite-int8")["details"]
    graph = details["int8_graph"]
    assert graph["float_ops"] == {} and graph["int8_ops"] == graph["ops"] > 0
    assert graph["quantize"] == graph["dequantize"] == graph["conversions_inside"] == 0
    assert graph["xnnpack_partitions"] == 1  # XNNPACK takes the whole graph, as for fp32
    assert details["float_ops"] == []
    assert details["unannotated_ops"] == {}


def test_the_int8_mobilenet_keeps_the_fp32_answers(record: dict) -> None:
    arts = {a["name"]: a for a in record["artifacts"]}
    fp32, int8 = arts["tflite-fp32"], arts["tflite-int8"]
    assert int8["verification"]["agreement"] >= 0.9
    assert int8["verification"]["cosine"] >= 0.99
    assert int8["metrics"]["top1"] >= fp32["metrics"]["top1"] - 0.05
    assert fp32["metrics"]["top1"] >= 0.5  # the model learned something: the check means it


def test_the_hard_activations_are_rewritten_exactly() -> None:
    from modelpress.steps.export.tflite_int8 import decompose_hard_activations

    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 1), torch.nn.Hardswish(), torch.nn.Conv2d(8, 8, 1)
    )
    se = torch.nn.Sequential(net, torch.nn.Hardsigmoid())
    x = torch.randn(2, 3, 5, 5) * 4  # well past ±3, where both activations saturate
    graph = torch.export.export(se.eval(), (x,)).module()
    assert decompose_hard_activations(graph) == 2
    names = {str(n.target) for n in graph.graph.nodes}
    assert not any("hardswish" in n or "hardsigmoid" in n for n in names)
    torch.testing.assert_close(graph(x), se(x), atol=1e-6, rtol=1e-5)


def test_a_float_island_is_listed_with_its_reason(tmp_path: Path) -> None:
    """tanh of tanh: the tensor between the two has no scale, so both stay float."""
    (tmp_path / "net.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn


            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.a = nn.Conv2d(1, 8, 3, padding=1)
                    self.b = nn.Conv2d(8, 8, 3, padding=1)
                    self.fc = nn.Linear(8, 10)

                def forward(self, x):
                    y = self.b(torch.tanh(torch.tanh(self.a(x))))
                    return self.fc(y.mean((2, 3)))


            def build():
                return Net()
            """
        )
    )
    steps = [{"type": "export", "format": "tflite", "precision": "int8", "stem": "int8"}]
    recipe = tiny_recipe(
        f"{tmp_path / 'net.py'}:build",
        input_shape="1,1,8,8",
        data={"source": "builtin:digits", "max_samples": 200},
        steps=steps,
    )
    record = pipeline.run(build_recipe(recipe), out=tmp_path / "run")
    details = record["artifacts"][0]["details"]
    assert details["int8_graph"]["float_ops"] == {"TANH": 2}
    assert details["int8_graph"]["conversions_inside"] >= 2  # a DEQUANTIZE in, a QUANTIZE out
    assert details["unannotated_ops"] == {"aten.tanh.default": 2}
    (entry,) = details["float_ops"]
    assert entry["op"] == "TANH" and entry["count"] == 2
    assert "aten.tanh.default ×2" in entry["why"] and "no int8 annotation" in entry["why"]


def test_the_int8_file_has_short_tensor_names_and_keeps_its_io_names(record: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter

    arts = {a["name"]: a for a in record["artifacts"]}
    assert arts["tflite-int8"]["details"]["names_compacted_bytes"] > 0
    fp32 = Interpreter(model_path=str(record["out"] / arts["tflite-fp32"]["path"]))
    int8 = Interpreter(model_path=str(record["out"] / arts["tflite-int8"]["path"]))
    assert [d["name"] for d in int8.get_input_details()] == [
        d["name"] for d in fp32.get_input_details()
    ]
    assert int8.get_signature_list() == fp32.get_signature_list()
    inner = [d["name"] for d in int8.get_tensor_details()]
    assert max(len(n) for n in inner if not n.startswith("serving_default")) <= 5


def test_a_float_stem_is_the_only_float_op_and_says_why(record: dict) -> None:
    arts = {a["name"]: a for a in record["artifacts"]}
    details = arts["tflite-int8-float-stem"]["details"]
    assert details["stem"]["kept"] == "fp32" and details["stem"]["how"] == "asked in the recipe"
    graph = details["int8_graph"]
    assert graph["float_ops"].get("CONV_2D") == 1  # the stem; every other conv is int8
    assert set(graph["float_ops"]) <= {"CONV_2D", "PAD", "PADV2", "TRANSPOSE"}
    assert details["float_ops"] and all("stem" in f["why"] for f in details["float_ops"])
    assert graph["quantize"] == 1 and graph["xnnpack_partitions"] == 1
    assert arts["tflite-int8-float-stem"]["verification"]["agreement"] >= 0.9
    # its input is float32 now, yet it is full int8 inside, and the runtime says so
    assert details["io"]["inputs"] == ["float32"]
    assert arts["tflite-int8-float-stem"]["precision"] == "int8"
    from modelpress.core.artifact import Artifact
    from modelpress.runtimes import runtime_for

    path = record["out"] / arts["tflite-int8-float-stem"]["path"]
    assert runtime_for(Artifact("f", "tflite", [], path=path), 1).precision() == "int8"


def test_the_stem_is_built_both_ways_and_the_faster_kept(record: dict) -> None:
    stem = next(a for a in record["artifacts"] if a["name"] == "tflite-int8-auto")["details"][
        "stem"
    ]
    timed = stem["batch1_ms"]
    assert set(timed) == {"int8", "fp32"}
    assert stem["kept"] == ("fp32" if timed["fp32"] < 0.95 * timed["int8"] else "int8")
