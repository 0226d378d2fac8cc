"""`modelpress distill` and `modelpress prune` in a subprocess, as a user runs them."""

import json
from pathlib import Path

import yaml

from helpers.cli import assert_one_line_error, run_cli


def test_distill_command_runs_and_saves_its_recipe(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    out, saved = tmp_path / "run", tmp_path / "distill.yaml"
    result = run_cli(
        "distill",
        "--teacher",
        str(trained_checkpoint),
        "--student",
        "zoo:dscnn",
        "--student-kwargs",
        '{"width_mult": 0.25}',
        "--data",
        "builtin:digits",
        "--input-shape",
        "1,1,16,16",
        "--epochs",
        "2",
        "--alpha-start",
        "0.9",
        "--alpha-end",
        "0.1",
        "--compare-scratch",
        "--out",
        str(out),
        "--save-recipe",
        str(saved),
    )
    assert result.returncode == 0, result.stderr
    step = yaml.safe_load(saved.read_text())["steps"][0]
    assert step["type"] == "distill" and step["alpha_start"] == 0.9 and step["compare_scratch"]
    entry = json.loads((out / "record.json").read_text())["steps"][0]
    assert entry["status"] == "ok" and "top1" in entry["scratch"]["metrics"]
    assert "distill" in result.stdout


def test_prune_command_prunes_and_reports(trained_checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli(
        "prune",
        str(trained_checkpoint),
        "--data",
        "builtin:digits",
        "--ratio",
        "0.3",
        "--finetune-epochs",
        "1",
        "--distill-from",
        "input",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "run/record.json").read_text())
    assert record["steps"][0]["artifact"]["macs"] < record["baseline"]["macs"]


def test_prune_ratio_out_of_range_is_one_line(trained_checkpoint: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli(
            "prune",
            str(trained_checkpoint),
            "--data",
            "builtin:digits",
            "--ratio",
            "1.5",
            "--out",
            str(tmp_path / "run"),
        ),
        "ratio must be between 0 and 1 (exclusive), got 1.5",
    )


def test_distill_with_bad_student_kwargs_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli(
            "distill",
            "--teacher",
            "zoo:dscnn",
            "--student",
            "zoo:dscnn",
            "--student-kwargs",
            "{width: 1}",
            "--data",
            "builtin:digits",
            "--out",
            str(tmp_path / "run"),
        ),
        "--student-kwargs: not valid JSON",
    )
