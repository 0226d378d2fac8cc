"""Honest statuses, as a user meets them: a model with NaN outputs is measured and recorded
``collapsed`` (never a crash, never recommended); ``train`` and ``distill`` of a model that
cannot learn say ``did_not_learn`` with the figures and exit 3 unless ``--allow-chance``; an
output read as class scores that is not one vector per sample is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

QUICK = ("--repeats", "3", "--warmup", "0", "--batch-sizes", "1")

MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Nan(nn.Module):
        # every sample NaN, or (some=True) those whose pixel 20 is bright
        def __init__(self, some=False):
            super().__init__()
            self.some = some
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            y = self.body(x)
            bad = x.flatten(1)[:, 20:21] > 0.5 if self.some else torch.ones_like(y[:, :1]) > 0
            return torch.where(bad, torch.full_like(y, float("nan")), y)


    class Frozen(nn.Module):
        # a head of zeros that never trains: every sample gets the same (zero) logits
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
            self.head = nn.Linear(16, 10)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.head.requires_grad_(False)

        def forward(self, x):
            return self.head(self.body(x))


    class Grouped(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 10)

        def forward(self, x):
            return self.lin(x.flatten(1)).reshape(-1, 2, 5)


    def nan(some=False):
        return Nan(some)


    def frozen():
        return Frozen()


    def learns():  # a teacher
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


    def grouped():
        return Grouped()
    """
)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (typer's CliRunner): exit code, stdout and stderr."""
    from typer.testing import CliRunner

    from modelpress.cli.app import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


# ---------------------------------------------------------------- NaN / Inf outputs


@pytest.mark.parametrize(("some", "bad"), [(False, 360), (True, None)])
def test_bench_measures_a_nan_model_and_records_it_collapsed(
    models: Path, tmp_path: Path, some: bool, bad: int | None
) -> None:
    out = tmp_path / "bench.json"
    kwargs = json.dumps({"some": some})
    result = run_cli(
        "bench", f"{models}:nan", "--model-kwargs", kwargs, "--data", "builtin:digits",
        *QUICK, "--json", str(out),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr  # was: internal error, exit 1
    entry = json.loads(out.read_text())
    assert entry["status"] == "collapsed"
    n = entry["metrics"]["nonfinite_samples"]
    assert n == bad if bad else 0 < n < 360
    note = f"collapsed: {n} of 360 validation samples give non-finite outputs (NaN/Inf)"
    assert any(str(x).startswith(note) for x in entry["notes"])
    assert note in result.stdout and "chance" in result.stdout
    assert ("top1" in entry["metrics"]) is some  # scored over the finite samples only


def test_export_of_a_nan_model_goes_on_and_recommends_nothing(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "export", f"{models}:nan", "--model-kwargs", '{"some": true}', "--data",
        "builtin:digits", "--out", str(out),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["baseline"]["status"] == "collapsed"
    onnx = record["steps"][0]
    assert onnx["status"] == "collapsed" and onnx["artifact"]["metrics"]["nonfinite_samples"] > 0
    assert record["recommendation"]["name"] is None
    assert "nothing to recommend" in record["recommendation"]["why"]
    assert "recommendation: none — nothing to recommend" in " ".join(result.stdout.split())


# ---------------------------------------------------------------- did_not_learn


def test_train_of_a_model_that_cannot_learn_says_did_not_learn_and_exits_3(
    models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "frozen.pt"
    args = ["train", f"{models}:frozen", "--data", "builtin:digits", "--epochs", "1"]
    result = run_cli(*args, "--out", str(out))

    assert result.returncode == 3, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert said.startswith("did_not_learn: best validation top1 0.")
    assert "(epoch 1 of 1) is at chance level, chance 0.1028" in said
    assert "most common class" in said
    assert out.is_file() and "a model that did not learn" in " ".join(result.stdout.split())

    allowed = run_cli(*args, "--out", str(out), "--force", "--allow-chance")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "warning: did_not_learn" in " ".join(allowed.stderr.split())


def test_distill_into_a_student_that_cannot_learn_exits_3(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "distill"
    args = [
        "distill", "--teacher", f"{models}:learns", "--student", f"{models}:frozen",
        "--data", "builtin:digits", "--epochs", "1", "--out", str(out),
    ]  # fmt: skip
    result = run_cli(*args)

    assert result.returncode == 3, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert said.startswith("did_not_learn: best validation top1 0.")
    assert f"the student is kept ({out}/nodes/" in said and "status collapsed" in said
    student = json.loads((out / "record.json").read_text())["steps"][0]
    assert student["status"] == "collapsed" and student["artifact"]["details"]["did_not_learn"]

    allowed = run_cli(*args, "--force", "--allow-chance")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


# ---------------------------------------------------------------- silent guesses


def test_an_output_of_two_groups_of_five_is_not_read_as_ten_logits(
    models: Path, tmp_path: Path
) -> None:
    result = run_cli("bench", f"{models}:grouped", "--data", "builtin:digits", *QUICK)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "outputs (B, 2, 5) per batch" in lines[0] and "--task fidelity" in lines[0]


def test_the_did_not_learn_hint_fits_the_learning_rate() -> None:
    from modelpress.cli.train import _what_to_try

    assert _what_to_try(100.0, "adamw").startswith("--lr 100 is large for adamw: try about 1e-3")
    assert _what_to_try(0.5, "sgd").startswith("try a higher --lr")  # usual for SGD
    assert _what_to_try(1e-4, "adamw").startswith("try a higher --lr")


def test_a_coverage_not_measured_says_so_in_the_report() -> None:
    from modelpress.report.sections.int8 import coverage_summary

    off = {"runtime": "onnxruntime", "skipped": "not measured (evaluate.int8_coverage off)"}
    assert coverage_summary(off) == "not measured (evaluate.int8_coverage off)"
