import numpy as np
import torch
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.runtimes import runtime_for
from modelpress.runtimes.base import Runtime

SPEC = [InputSpec("input", (1, 4))]


class FixedBatchEcho(Runtime):
    """Accepts exactly 3 rows per call, like an artifact exported with a static batch."""

    name = "echo"

    def __init__(self) -> None:
        super().__init__(Artifact("echo", "onnx", SPEC), threads=1)
        self.fixed_batch = 3
        self.seen: list[int] = []

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self.seen.append(len(inputs[0]))
        return [inputs[0] * 2]


def test_predict_pads_the_last_batch_of_a_fixed_batch_runtime_and_trims_it() -> None:
    rt = FixedBatchEcho()
    x = np.arange(7 * 4, dtype=np.float32).reshape(7, 4)
    out = rt.predict([x], batch_size=64)
    assert rt.seen == [3, 3, 3]
    assert np.array_equal(out, x * 2)


def test_torch_runtime_respects_threads_and_returns_float32() -> None:
    model = nn.Linear(4, 2).double()
    rt = runtime_for(Artifact("m", "torch", SPEC, module=model), threads=1)
    out = rt.predict([np.ones((5, 4))], batch_size=2)
    assert out.dtype == np.float32 and out.shape == (5, 2)
    assert torch.get_num_threads() == 1
    assert rt.param_count() == 10


def test_prepared_calls_compute_what_run_computes(tmp_path) -> None:
    """The timed call binds its inputs once (ORT I/O binding, OpenVINO shared tensors); it must
    still run the model on exactly that batch, and keep the batch alive itself."""
    import gc

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.zeros(1, 4),), str(path), dynamo=True, input_names=["input"])
    x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    formats = [("onnx", path)]
    if _has_openvino():
        import openvino as ov

        ov.save_model(ov.convert_model(str(path)), str(tmp_path / "m.xml"))
        formats.append(("openvino", tmp_path / "m.xml"))
    for fmt, p in formats:
        rt = runtime_for(Artifact("m", fmt, SPEC, path=p), threads=1)
        call = rt.prepare([x.copy()])  # the caller's array goes away: the binding keeps its own
        gc.collect()
        out = call()
        got = out[0] if isinstance(out, list) else next(iter(out.values()))
        got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3, err_msg=fmt)
        np.testing.assert_allclose(rt.run([x]), expected, rtol=1e-3, atol=1e-3, err_msg=fmt)


def _has_openvino() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True
