"""Mobile architectures (hardswish, squeeze-excite) run in int8 end to end in ONNX Runtime."""

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from helpers.recipes import ANALYSES_OFF
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.steps.export.onnx_int8_graph import rewrite_for_int8


@pytest.fixture(scope="module")
def mobile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("mobile") / "run"
    recipe = build_recipe(
        {
            "model": "zoo:mobilenetv3_small",
            "model_kwargs": {"width_mult": 0.5},
            "data": {"source": "builtin:digits", "max_samples": 300},
            "input_shape": "1,3,32,32",
            "steps": [
                {"type": "export", "format": "onnx"},
                {"type": "export", "format": "onnx", "precision": "int8"},
            ],
            "evaluate": {"repeats": 5, "batch_sizes": [1], **ANALYSES_OFF},
        }
    )
    return pipeline.run(recipe, out=out), out


def _runtime_ops(path: Path, tmp: Path) -> Counter:
    """The kernels ONNX Runtime really runs: its optimized graph, saved."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return Counter(n.op_type for n in onnx.load(str(tmp / "optimized.onnx")).graph.node)


def test_rewrites_keep_the_fp32_outputs(mobile_run: tuple[dict, Path], tmp_path: Path) -> None:
    record, root = mobile_run
    fp32 = root / next(a for a in record["artifacts"] if a["name"] == "onnx-fp32")["path"]
    done = rewrite_for_int8(str(fp32), str(tmp_path / "rewritten.onnx"))
    assert done["reduce_mean_to_global_average_pool"] > 0
    assert done["hardsigmoid_folded_into_conv"] > 0  # the squeeze-excite gates
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "rewritten.onnx")).graph.node)
    assert ops["ReduceMean"] == 0 and ops["HardSigmoid"] == 0
    x = np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32)
    before = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(
        str(tmp_path / "rewritten.onnx"), providers=["CPUExecutionProvider"]
    )
    name = before.get_inputs()[0].name
    np.testing.assert_allclose(
        after.run(None, {name: x})[0], before.run(None, {name: x})[0], rtol=1e-4, atol=1e-4
    )


def test_int8_graph_runs_without_float_islands(
    mobile_run: tuple[dict, Path], tmp_path: Path
) -> None:
    record, root = mobile_run
    int8 = next(a for a in record["artifacts"] if a["name"] == "onnx-int8")
    rewrites = int8["details"]["graph_rewrites"]
    assert rewrites["reduce_mean_to_global_average_pool"] > 0
    # every hardswish's α went into a quantization scale: hardswish is QLinearAdd + QLinearMul
    assert rewrites["scalar_mul_into_scale"] == rewrites["hardsigmoid_to_mul_add_clip"] > 0
    ops = _runtime_ops(root / int8["path"], tmp_path)
    # hardswish, the squeeze-excite gate and the pooling run as int8 kernels ...
    assert ops["HardSigmoid"] == 0 and ops["ReduceMean"] == 0
    assert ops["QLinearGlobalAveragePool"] > 0 and ops["QLinearMul"] > 0
    # ... so the graph quantizes its input once and dequantizes its output once
    assert ops["QuantizeLinear"] <= 1 and ops["DequantizeLinear"] <= 1
    assert int8["verification"]["cosine"] > 0.99


def test_int8_file_is_under_30_percent_of_fp32(mobile_run: tuple[dict, Path]) -> None:
    record, root = mobile_run
    arts = {a["name"]: a for a in record["artifacts"]}
    fp32, int8 = arts["onnx-fp32"], arts["onnx-int8"]
    assert record["baseline"]["params"] > 100_000
    assert int8["details"]["names_compacted_bytes"] > 0
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    # the compacted file still loads and keeps its input and output names
    session = ort.InferenceSession(str(root / int8["path"]), providers=["CPUExecutionProvider"])
    fp32_session = ort.InferenceSession(
        str(root / fp32["path"]), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == [i.name for i in fp32_session.get_inputs()]
    # quantized biases (int32) carry no zero-point tensor (optional, 0), and no initializer is
    # left unread
    graph = onnx.load(str(root / int8["path"])).graph
    int32 = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT32}
    bias_dq = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int32]
    assert bias_dq and all(len(n.input) == 2 for n in bias_dq)
    read = {i for n in graph.node for i in n.input}
    assert {t.name for t in graph.initializer} <= read


def test_openvino_int8_runs_the_squeeze_excite_gate_in_int8(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    recipe = build_recipe(
        {
            "model": "zoo:mobilenetv3_small",
            "model_kwargs": {"width_mult": 0.5},
            "data": {"source": "builtin:digits", "max_samples": 300},
            "input_shape": "1,3,32,32",
            "steps": [{"type": "export", "format": "openvino", "precision": "int8"}],
            "evaluate": {
                "repeats": 5,
                "batch_sizes": [1],
                "own_process_memory": False,
                "races": False,
            },
        }
    )
    record = pipeline.run(recipe, out=tmp_path / "run")
    int8 = record["artifacts"][0]
    assert int8["details"]["graph_rewrites"]["hardsigmoid_folded_into_conv"] > 0
    coverage = int8["int8_coverage"]
    # the gates ran in f32 between reorders before; now every compute op of the compiled graph
    # runs in int8
    assert coverage["ops_float"] == 0 and coverage["float_ops"] == {}, coverage
    assert coverage["macs_int8_share"] > 0.99


def test_a_pool_whose_window_covers_its_input_becomes_a_global_pool_and_int8_keeps_accuracy(
    tmp_path: Path,
) -> None:
    """transformers' EfficientNet pools its last map with a kernel far larger than the map
    (AvgPool2d(2560, ceil_mode=True) on 2×2): its INT8 ONNX answered one class for every image
    (top-1 0.983 → 0.100). Rewritten to the GlobalAveragePool it computes, INT8 keeps it."""
    (tmp_path / "net.py").write_text(
        "import torch\n"
        "from torch import nn\n\n\n"
        "def build(num_classes=10, **_):\n"
        "    return nn.Sequential(\n"
        "        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),\n"
        "        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),\n"
        "        nn.AvgPool2d(256, ceil_mode=True), nn.Flatten(), nn.Linear(32, num_classes),\n"
        "    )\n"
    )
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    base = {"model": f"{tmp_path / 'net.py'}:build", "data": "builtin:digits"}
    ckpt = tmp_path / "net.pt"
    train_and_save(
        build_recipe({**base, "input_shape": "1,1,8,8"}), TrainConfig(epochs=6, lr=1e-2), ckpt
    )
    recipe = build_recipe(
        {
            "model": str(ckpt),
            "data": "builtin:digits",
            "trust_checkpoint_code": True,
            "steps": [{"type": "export", "format": "onnx", "precision": "int8"}],
            "evaluate": {"repeats": 3, "batch_sizes": [1], **ANALYSES_OFF},
        }
    )
    record = pipeline.run(recipe, out=tmp_path / "run")
    int8 = record["artifacts"][0]
    assert int8["details"]["graph_rewrites"]["whole_window_average_pool_to_global"] == 1
    base_top1 = record["baseline"]["metrics"]["top1"]
    assert base_top1 > 0.5 and int8["status"] == "ok", int8["notes"]
    assert int8["metrics"]["top1"] >= base_top1 - 0.03
