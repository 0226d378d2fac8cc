"""``--resume`` in a new process: every node the earlier run finished is reused, torch
quantized graphs (.pt2 with quantized_decomposed ops and torchao weights) included."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from helpers.cli import run_cli as cli
from helpers.recipes import ANALYSES_OFF


def test_resume_in_a_fresh_process_reuses_quantized_torch_nodes(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": "zoo:mlp",
                "data": {"source": "builtin:digits", "max_samples": 200},
                "steps": [
                    {"type": "quantize", "method": "static"},
                    {"type": "quantize", "method": "dynamic"},
                ],
                "evaluate": {"repeats": 3, "warmup": 1, "batch_sizes": [1], **ANALYSES_OFF},
            }
        )
    )
    out = tmp_path / "run"
    assert cli("run", str(recipe), "--out", str(out)).returncode == 0
    again = cli("run", str(recipe), "--out", str(out), "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "quantize-static: finished before" in again.stdout
    assert "quantize-dynamic: finished before" in again.stdout
    record = json.loads((out / "record.json").read_text())
    assert [s["reused"] for s in record["steps"]] == [True, True]
