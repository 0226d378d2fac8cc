"""``modelpress compare``: each technique alone on the baseline, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_cli import assert_one_line_error, cli

from modelpress.evaluate.techniques import table

FAST = ["--input-shape", "1,1,16,16", "--epochs", "1"]


def test_compare_measures_each_technique_names_the_best_and_resumes(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    out, saved = tmp_path / "cmp", tmp_path / "compare.yaml"
    args = [
        "compare", str(trained_checkpoint), "--data", "builtin:digits", *FAST,
        "--techniques", "dynamic,static,torchscript,l1-unstructured",
        "--out", str(out), "--save-recipe", str(saved),
    ]  # fmt: skip
    result = cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((out / "record.json").read_text())
    rows = {r["technique"]: r for r in record["techniques"]}
    assert list(rows) == [
        "onnx-fp32", "dynamic-onnx", "static-onnx", "torchscript", "l1-unstructured",
    ]  # fmt: skip
    base = record["baseline"]["metrics"]["top1"]
    for name, row in rows.items():
        assert row["status"] in ("ok", "degraded") and row["size_bytes"] > 0
        assert row["latency_ms"] > 0 and 0 <= row["metrics"]["top1"] <= 1
        if name != "l1-unstructured":  # not retrained: the baseline's accuracy, within 2 pt
            assert abs(row["metrics"]["top1"] - base) <= 0.02, name
    assert rows["static-onnx"]["precision"] == "int8" and rows["static-onnx"]["format"] == "onnx"
    assert rows["l1-unstructured"]["format"] == "torch"
    # each best_for goes to the row that really is best
    best = {w: [t for t, r in rows.items() if w in r["best_for"]] for w in ("size", "speed")}
    assert best["size"] == [min(rows, key=lambda t: rows[t]["size_bytes"])]
    assert best["speed"] == [min(rows, key=lambda t: rows[t]["latency_ms"])]
    assert any("accuracy" in r["best_for"] for r in rows.values())
    # every technique starts from the baseline, but ORT quantizes the FP32 ONNX export
    starts = {s["id"]: s["from"] for s in record["steps"]}
    assert starts["torchscript"] == ["baseline"] and starts["static-onnx"] == ["onnx-fp32"]
    report = (out / "report.md").read_text()
    assert report.index("## Techniques compared") < report.index("## Progression")
    assert "Techniques compared" in result.stdout and "best for size:" in result.stdout
    assert yaml.safe_load(saved.read_text())["compare"] == list(rows)

    again = cli(*args, "--resume")  # every node reused, no technique lost
    assert again.returncode == 0, again.stderr
    record = json.loads((out / "record.json").read_text())
    assert all(s["reused"] for s in record["steps"]) and len(record["techniques"]) == len(rows)


def test_compare_bad_techniques_are_one_line(trained_checkpoint: Path) -> None:
    base = ["compare", str(trained_checkpoint), "--data", "builtin:digits"]
    assert_one_line_error(
        cli(*base, "--techniques", "statc,fp16"),
        "--techniques: unknown 'statc' (did you mean static?)",
        "choose from dynamic, static,",
    )
    assert_one_line_error(cli(*base, "--techniques", "fp16,fp16"), "fp16 given twice")
    assert_one_line_error(cli(*base, "--formats", "onnx,coreml"), "--formats: unknown 'coreml'")
    assert_one_line_error(
        cli(*base, "--techniques", "distill"), "--techniques distill: needs --student"
    )


def test_a_failed_technique_keeps_its_row_with_the_reason() -> None:
    record = {
        "primary_metric": "top1",
        "steps": [
            {
                "id": "qat",
                "status": "failed",
                "error": "qat: torchao cannot prepare this model",
                "config": {"type": "qat"},
                "artifact": None,
            },
            {
                "id": "fp16-onnx",
                "status": "ok",
                "config": {"type": "export"},
                "artifact": {
                    "name": "onnx-fp16",
                    "format": "onnx",
                    "precision": "fp16",
                    "size_bytes": 10,
                    "latency_ms": {"median": 1.0, "p90": 1.2},
                    "metrics": {"top1": 0.9},
                },
            },
        ],
    }
    rows = table(record, ["qat", "fp16-onnx", "nowhere"])
    assert rows[0]["status"] == "failed" and rows[0]["error"].endswith("cannot prepare this model")
    assert rows[0]["best_for"] == [] and rows[1]["best_for"] == ["size", "speed", "accuracy"]
    assert rows[2]["error"] == "no step has the id 'nowhere'"
