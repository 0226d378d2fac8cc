"""OpenVINO with a dynamic batch: the order analyze runs an artifact in (evaluation at batch 60,
a benchmark's bound batch of 32 freed, then batch 1) crashed OpenVINO 2026.4.1's CPU plugin
(SIGSEGV, or an abort on a corrupted heap) before each input shape got its own compiled model."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

SRC = Path(__file__).resolve().parents[2] / "src"


def _tiny_ir(path: Path) -> Path:
    """One convolution with a dynamic batch, (?, 3, 32, 32) → (?, 8, 32, 32), as an IR."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([-1, 3, 32, 32], np.float32, name="images")
    w = ops.constant(np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32))
    y = ops.relu(ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1]))
    ov.save_model(ov.Model([y], [x], "tiny"), str(path))
    return path


# Run in a child: on the code before the fix this process would die with the plugin.
_ORDER = textwrap.dedent(
    """
    import gc, sys
    from pathlib import Path
    import numpy as np
    from modelpress.core.artifact import Artifact
    from modelpress.runtimes import runtime_for
    from modelpress.core.inputs import InputSpec

    art = Artifact("m", "openvino", [InputSpec("images", (1, 3, 32, 32))], path=Path(sys.argv[1]))
    runtime = runtime_for(art, 2)
    x = lambda n: np.random.default_rng(n).random((n, 3, 32, 32), dtype=np.float32)
    for _ in range(3):
        runtime.run_all([x(60)])                  # evaluation's last batch
        call = runtime.prepare([x(32)])           # a benchmark's bound batch
        call(); call()
        del call; gc.collect()
        out = runtime.run_all([x(1)])             # the end-to-end timing
    runtime.close()
    print(out[0].shape)
    """
)


def test_a_dynamic_batch_ir_survives_the_batch_sizes_analyze_runs_it_at(tmp_path: Path) -> None:
    ir = _tiny_ir(tmp_path / "tiny.xml")

    done = subprocess.run(
        [sys.executable, "-c", _ORDER, str(ir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
        check=False,
    )

    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "(1, 8, 32, 32)"


def test_each_batch_size_gets_outputs_equal_to_a_fresh_model_s(tmp_path: Path) -> None:
    """Reshaping per batch changes nothing computed: every batch size's outputs equal those of
    a model compiled as written, evaluation's padded last batch included."""
    import openvino as ov

    from modelpress.core.artifact import Artifact
    from modelpress.core.inputs import InputSpec
    from modelpress.runtimes import runtime_for

    ir = _tiny_ir(tmp_path / "tiny.xml")
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # as the runtime compiles (no bf16 on AMX CPUs)
    reference = ov.Core().compile_model(str(ir), "CPU", f32)
    art = Artifact("m", "openvino", [InputSpec("images", (1, 3, 32, 32))], path=ir)
    runtime = runtime_for(art, 1)
    x = np.random.default_rng(0).random((70, 3, 32, 32), dtype=np.float32)
    try:
        (everything,) = runtime.predict_all([x], batch_size=32)  # 32, 32, then 6 padded to 32
        (one,) = runtime.read_outputs(runtime.prepare([x[:1]])())
        compiled_for = sorted(shapes[0][0] for shapes in runtime._by_shape)
    finally:
        runtime.close()

    want = reference.create_infer_request().infer({0: x})[reference.outputs[0]]
    np.testing.assert_allclose(everything, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(one, want[:1], rtol=1e-4, atol=1e-4)
    assert compiled_for == [1, 32]  # the last batch of 6 was padded, not compiled for
