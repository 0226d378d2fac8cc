"""Temporary files live in a temporary folder and go with it: an ONNX INT8 export once left
ORT's ``sym_shape_infer_temp.onnx`` and a 12 MB ``<uuid>.data`` in the user's current folder."""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path

import pytest

from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A detector: ORT's symbolic shape inference gives up on its graph (and saved it where it ran).
DETECTOR = {
    "model": "zoo:yolo_nano",
    "model_kwargs": {"width_mult": 0.25},
    "data": {"source": "builtin:digits-detect", "max_samples": 60},
    "input_shape": "1,3,64,64",
    "evaluate": {"repeats": 3, "warmup": 1, "batch_sizes": [1]},
    "steps": [{"type": "export", "format": "onnx", "precision": "int8"}],
}


def test_an_onnx_int8_export_leaves_the_current_and_temporary_folders_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, scratch = tmp_path / "here", tmp_path / "tmp"
    here.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # this process's temporary folder
    monkeypatch.setenv("TMPDIR", str(scratch))  # and its children's

    record = pipeline.run(build_recipe(DETECTOR), out=tmp_path / "run")
    gc.collect()  # the run's data (saved once for the measuring processes) is gone with it

    step = record["steps"][0]
    # an untrained detector is at chance (collapsed): measured all the same, which is the point
    assert step["status"] in ("ok", "collapsed"), step["error"]
    assert "quant_pre_process skipped" in " ".join(step["artifact"]["notes"])  # ORT gave up
    assert sorted(p.name for p in here.iterdir()) == []
    # libraries' own caches may stay (torch's inductor folder, a runtime's session marker);
    # modelpress's folders, models, weights and arrays may not
    left = [
        p.relative_to(scratch)
        for p in scratch.rglob("*")
        if p.name.startswith("modelpress-") or p.suffix in (".onnx", ".data", ".npy", ".npz")
    ]
    assert left == []
