"""``modelpress compare``: each technique alone on the baseline, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from helpers.cli import assert_one_line_error, run_cli
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
    result = run_cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((out / "record.json").read_text())
    rows = {r["technique"]: r for r in record["techniques"]}
    assert list(rows) == [
        "onnx-fp32", "dynamic-onnx", "static-onnx", "torchscript", "l1-unstructured",
    ]  # fmt: skip
    base = record["baseline"]["metrics"]["top1"]
    for name, row in rows.items():
        assert row["size_bytes"] > 0 and row["latency_ms"] > 0 and 0 <= row["metrics"]["top1"] <= 1
        if name != "l1-unstructured":  # not retrained: the baseline's accuracy, within 2 pt
            assert row["status"] in ("ok", "degraded"), name
            assert abs(row["metrics"]["top1"] - base) <= 0.02, name
    assert rows["static-onnx"]["precision"] == "int8" and rows["static-onnx"]["format"] == "onnx"
    # half the weights of this tiny dscnn zeroed, one epoch: top-1 about 0.36 from 0.96, chance
    # 0.10: collapsed (was `ok`), with both figures and chance; shown, never best for anything
    pruned = rows["l1-unstructured"]
    assert pruned["format"] == "torch" and pruned["status"] == "collapsed"
    assert pruned["best_for"] == [] and pruned["metrics"]["top1"] < 0.5
    note = next(n for n in record["steps"][-1]["artifact"]["notes"] if n.startswith("collapsed"))
    assert f"its parent's {base:.4f}" in note and "chance 0.1" in note
    # each best_for goes to the row that really is best, among those measured ok and not
    # slower than their FP32 sibling
    fit = {t: r for t, r in rows.items() if r["status"] == "ok" and not r.get("slower_than_fp32")}
    best = {w: [t for t, r in rows.items() if w in r["best_for"]] for w in ("size", "speed")}
    assert best["size"] == [min(fit, key=lambda t: rows[t]["size_bytes"])]
    assert best["speed"] == [min(fit, key=lambda t: rows[t]["latency_ms"])]
    assert any("accuracy" in r["best_for"] for r in rows.values())
    assert record["recommendation"]["name"] != pruned["artifact"]
    # every technique starts from the baseline, but ORT quantizes the FP32 ONNX export
    starts = {s["id"]: s["from"] for s in record["steps"]}
    assert starts["torchscript"] == ["baseline"] and starts["static-onnx"] == ["onnx-fp32"]
    report = (out / "report.md").read_text()
    assert report.index("## Techniques compared") < report.index("## Progression")
    assert "Techniques compared" in result.stdout and "best for size:" in result.stdout
    assert yaml.safe_load(saved.read_text())["compare"] == list(rows)

    again = run_cli(*args, "--resume")  # every node reused, no technique lost
    assert again.returncode == 0, again.stderr
    record = json.loads((out / "record.json").read_text())
    assert all(s["reused"] for s in record["steps"]) and len(record["techniques"]) == len(rows)


def test_compare_bad_techniques_are_one_line(trained_checkpoint: Path) -> None:
    base = ["compare", str(trained_checkpoint), "--data", "builtin:digits"]
    assert_one_line_error(
        run_cli(*base, "--techniques", "statc,fp16"),
        "--techniques: unknown 'statc' (did you mean static?)",
        "choose from dynamic, static,",
    )
    assert_one_line_error(run_cli(*base, "--techniques", "fp16,fp16"), "fp16 given twice")
    assert_one_line_error(run_cli(*base, "--formats", "onnx,coreml"), "--formats: unknown 'coreml'")
    assert_one_line_error(
        run_cli(*base, "--techniques", "distill"), "--techniques distill: needs --student"
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
