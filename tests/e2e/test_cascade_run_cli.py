"""``modelpress cascade run BUNDLE INPUTS...``: a built bundle on a folder of PNGs and on .npz
arrays, one JSON line per item, decisions as ``Cascade.predict`` makes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.cli import assert_one_line_error
from helpers.cli import run_cli as cli
from helpers.recipes import train_mlp

DATA = "builtin:digits-manipulated"
SHAPE = "1,1,16,16"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny binary MLPs (a second or two each to train) built into a cascade bundle."""
    out = tmp_path_factory.mktemp("cascade-run")
    stages = [
        train_mlp(out / f"{name}.pt", DATA, SHAPE, hidden, epochs)
        for name, hidden, epochs in (("fast", [16], 1), ("precise", [64], 2))
    ]
    built = cli(
        "cascade",
        "build",
        *("--stage", stages[0], "--stage", stages[1]),
        *("--data", DATA, "--input-shape", SHAPE),
        *("--max-leakage", "0.1", "--confidence", "0.9", "--out", str(out / "bundle")),
    )
    assert built.returncode == 0, built.stderr
    return out / "bundle"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """(40, 16, 16) uint8: images of the data the bundle was built on, as pixels."""
    from modelpress.sources.manipulated_data import digits_manipulated

    x, _, _ = digits_manipulated((1, 16, 16), seed=1, images=40)
    return np.clip(np.rint(x[:, 0] * 255), 0, 255).astype(np.uint8)


def _predict(bundle: Path, x: np.ndarray):
    from modelpress.deploy.cascade import Cascade

    cascade = Cascade.load(bundle)
    try:
        return cascade.predict([x]), [s.name for s in cascade.stages]
    finally:
        cascade.close()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_on_a_folder_of_pngs_and_an_npz_writes_one_line_per_item(
    bundle: Path, images: np.ndarray, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    for i, px in enumerate(images[:30]):
        sub = folder / ("more" if i >= 20 else "")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(px).save(sub / f"{i:02d}.png")
    (folder / "README.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    floats = (images[30:].astype(np.float32) / 255.0)[:, None]  # (10, 1, 16, 16)
    np.savez(tmp_path / "more.npz", x=floats)
    out = tmp_path / "results" / "run.jsonl"

    result = cli(
        "cascade", "run", str(bundle), str(folder), str(tmp_path / "more.npz"), "--out", str(out)
    )

    assert result.returncode == 0, result.stderr
    assert "Cascade run" in result.stdout and "Decisions" in result.stdout
    assert "broken.png" in result.stdout and "skipped 1 input" in result.stdout
    lines = _lines(out)
    items = [d for d in lines if d["type"] == "item"]
    assert len(lines) == 40 + 1 + 1  # 40 items, the skipped file, the summary
    assert [d["type"] for d in lines[-2:]] == ["skipped", "summary"]
    assert lines[-2]["input"] == str(folder / "broken.png")
    names = [f"{i:02d}.png" for i in range(20)] + [f"more/{i:02d}.png" for i in range(20, 30)]
    assert [d["input"] for d in items] == [str(folder / n) for n in names] + [
        f"{tmp_path / 'more.npz'}#{i}" for i in range(10)
    ]
    assert all(
        set(d) == {"type", "input", "decision", "class", "p", "stage", "stage_name"} for d in items
    )
    # the PNGs are read to pixels / 255, as the .npz holds them: one set of arrays
    x = np.concatenate([(images[:30].astype(np.float32) / 255.0)[:, None], floats])
    routed, stage_names = _predict(bundle, x)
    assert [d["decision"] for d in items] == routed.decision.tolist()
    assert [d["stage"] for d in items] == routed.stage.tolist()
    np.testing.assert_allclose([d["p"] for d in items], routed.p, rtol=1e-5)
    assert [d["stage_name"] for d in items] == [stage_names[s] for s in routed.stage]
    from modelpress.cli.cascade_run import class_names

    classes = class_names(json.loads((bundle / "cascade.json").read_text()))
    assert len(classes) == 2 and all(d["class"] == classes[d["decision"]] for d in items)
    summary = lines[-1]
    assert summary["items"] == 40 and summary["skipped"] == 1
    assert summary["per_stage"] == np.bincount(routed.stage, minlength=2).tolist()
    assert summary["decisions"] == {
        classes[0]: int((routed.decision == 0).sum()),
        classes[1]: int((routed.decision == 1).sum()),
    }
    assert summary["ms_per_item"] > 0
    assert not list(out.parent.glob("*.tmp"))


def test_run_on_uint8_npz_images_without_out_prints_only_the_table(
    bundle: Path, images: np.ndarray, tmp_path: Path
) -> None:
    np.savez(tmp_path / "px.npz", images=images[:, :, :, None])

    result = cli("cascade", "run", str(bundle), str(tmp_path / "px.npz"), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "40 items" in result.stdout and "Cascade run" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["px.npz"]  # no results file


def test_a_missing_input_is_one_line_and_writes_nothing(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"

    result = cli("cascade", "run", str(bundle), str(tmp_path / "nope.png"), "--out", str(out))

    assert_one_line_error(result, "nope.png", "not found")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_missing_bundle_is_one_line(images: np.ndarray, tmp_path: Path) -> None:
    Image.fromarray(images[0]).save(tmp_path / "a.png")

    result = cli("cascade", "run", str(tmp_path / "no-bundle"), str(tmp_path / "a.png"))

    assert_one_line_error(result, "no-bundle", "not a cascade bundle")


def test_nothing_readable_or_an_npz_of_the_wrong_shape_exits_2(
    bundle: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken.png").write_bytes(b"not an image")
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 1, 8, 8), np.float32))
    out = tmp_path / "r.jsonl"

    unreadable = cli("cascade", "run", str(bundle), str(tmp_path / "broken.png"), "--out", str(out))
    wrong = cli("cascade", "run", str(bundle), str(tmp_path / "wrong.npz"), "--out", str(out))

    assert_one_line_error(unreadable, "none of the 1 inputs could be read", "broken.png")
    assert_one_line_error(wrong, "wrong.npz", "(3, 1, 8, 8)", "(N, 1, 16, 16)")
    assert (
        not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    )
