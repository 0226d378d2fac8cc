"""A cascade bundle is something one person builds and another deploys: nothing in it chooses
code to run, every file it names stays inside it, and its certificate is what was measured.

Each test edits a real bundle the way the trust review did. Where an attacker could also
rewrite the digests (they are not a signature), the test re-seals the edited bundle, so what
stops it is the check behind the digest: the stage format, the file's place, the recount."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.cli import assert_one_line_error, run_cli
from modelpress.deploy.bundle import INTEGRITY_KEY, content_digest, seal, sha256
from modelpress.deploy.cascade import BUNDLE_FILE, Cascade, CascadeError, build

DATA = "builtin:digits-manipulated"
SHAPE = "1,1,8,8"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, manipulated_stages: list[str]) -> Path:
    out = tmp_path_factory.mktemp("trusted")  # DATA's stages at SHAPE, trained once (conftest)
    cascade, _ = build(
        manipulated_stages, DATA, out / "bundle", max_leakage=0.1, confidence=0.9, input_shape=SHAPE
    )
    cascade.close()
    return out / "bundle"


@pytest.fixture
def bundle(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built bundle, for one test to edit."""
    return Path(shutil.copytree(built, tmp_path / "received"))


@pytest.fixture
def items(tmp_path: Path) -> str:
    """Inputs for cascade run (never read: the bundle is refused first)."""
    path = tmp_path / "items.npz"
    np.savez(path, x=np.zeros((2, 1, 8, 8), np.float32))
    return str(path)


def _doc(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / BUNDLE_FILE).read_text())


def _write(bundle: Path, doc: dict[str, Any], reseal: str = "content") -> None:
    """cascade.json as edited: its digests left stale, the content digest recomputed, or the
    whole bundle re-sealed (every file digest too) as a careful attacker would."""
    if reseal == "all":
        doc = seal(bundle, doc)
    elif reseal == "content":
        doc[INTEGRITY_KEY]["content"] = content_digest(doc)
    (bundle / BUNDLE_FILE).write_text(json.dumps(doc))


def test_a_built_bundle_holds_deployed_files_digests_and_evidence_and_loads(built: Path) -> None:
    doc = _doc(built)
    files = doc[INTEGRITY_KEY]["files"]
    assert [s["file"] for s in doc["stages"]] == ["stage0-fast.ts", "stage1-precise.ts"]
    assert set(files) == {"stage0-fast.ts", "stage1-precise.ts", "calibration.npz"}
    assert all(files[name] == sha256(built / name) for name in files)
    assert doc[INTEGRITY_KEY]["content"] == content_digest(doc)
    cascade = Cascade.load(built, with_data=False)
    try:
        assert [s.runtime.name for s in cascade.stages] == ["torchscript", "torchscript"]
        x = np.zeros((3, 1, 8, 8), np.float32)
        assert cascade.predict([x]).decision.shape == (3,)
    finally:
        cascade.close()


# ------------------------------------------------------------------ code from a bundle
def test_a_stage_naming_a_python_factory_never_imports_it(
    bundle: Path, tmp_path: Path, items: str
) -> None:
    marker = tmp_path / "PWNED"
    (bundle / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ndef make():\n    pass\n"
    )
    shutil.copyfile(bundle / "stage0-fast.ts", bundle / "evil.py:make")  # passes "inside"
    doc = _doc(bundle)
    doc["stages"][0]["file"] = "evil.py:make"
    _write(bundle, doc, reseal="all")

    with pytest.raises(CascadeError, match=r"evil\.py:make: not a deployed model file"):
        Cascade.load(bundle, with_data=False)
    for command in (
        ["cascade", "eval", str(bundle), "--data", DATA],
        ["cascade", "run", str(bundle), items],
    ):
        assert_one_line_error(run_cli(*command), "not a deployed model file")
    assert not marker.exists()


def test_a_checkpoint_in_a_bundle_is_not_a_stage(bundle: Path) -> None:
    """A modelpress checkpoint rebuilds its model from code it names: never from a bundle."""
    import torch

    torch.save({"state_dict": {}, "modelpress": {"model": "zoo:mlp"}}, bundle / "ckpt.pt")
    doc = _doc(bundle)
    doc["stages"][1]["file"] = "ckpt.pt"
    _write(bundle, doc, reseal="all")
    with pytest.raises(CascadeError, match=r"ckpt\.pt: not a deployed model file"):
        Cascade.load(bundle, with_data=False)


@pytest.mark.parametrize(
    "name, says",
    [
        ("../outside.ts", "not a plain file name"),
        ("/etc/passwd", "not a plain file name"),
        ("link.ts", "lies outside the bundle"),
        (7, "not a plain file name"),
    ],
)
def test_every_file_a_bundle_names_stays_inside_it(
    bundle: Path, tmp_path: Path, name: Any, says: str
) -> None:
    outside = tmp_path / "outside.ts"
    shutil.copyfile(bundle / "stage1-precise.ts", outside)
    (bundle / "link.ts").symlink_to(outside)
    doc = _doc(bundle)
    doc["stages"][1]["file"] = name
    _write(bundle, doc)
    with pytest.raises(CascadeError, match=says):
        Cascade.load(bundle, with_data=False)


def test_the_meta_model_file_stays_inside_the_bundle(bundle: Path, items: str) -> None:
    doc = _doc(bundle)
    doc["meta_model"] = {"kind": "lightgbm", "file": "../../../../etc/passwd", "threshold": 0.5}
    _write(bundle, doc)
    result = run_cli("cascade", "run", str(bundle), items)
    assert_one_line_error(result, "the meta-model file", "not a plain file name")


def test_a_swapped_stage_file_is_refused(bundle: Path) -> None:
    shutil.copyfile(bundle / "stage1-precise.ts", bundle / "stage0-fast.ts")
    with pytest.raises(CascadeError, match=r"stage 0's file stage0-fast\.ts is not the file"):
        Cascade.load(bundle, with_data=False)


# ------------------------------------------------------------------ the certificate
def test_thresholds_edited_to_let_everything_exit_are_refused(bundle: Path) -> None:
    doc = _doc(bundle)
    doc["stages"][0]["certificate"]["low"] = 1.0
    doc["stages"][0]["certificate"]["high"] = None
    _write(bundle, doc, reseal="none")
    assert_one_line_error(run_cli("cascade", "eval", str(bundle), "--data", DATA), "was edited")
    _write(bundle, doc, reseal="all")  # digests forged too: the recount still sees it
    result = run_cli("cascade", "eval", str(bundle), "--data", DATA)
    assert_one_line_error(result, "stage 0", "not built with these thresholds")


def test_an_edited_bound_or_temperature_is_refused(bundle: Path) -> None:
    doc = _doc(bundle)
    doc["bound"]["max_leakage"] = 0.0
    _write(bundle, doc, reseal="all")
    with pytest.raises(CascadeError, match="is not a certificate"):
        Cascade.load(bundle, with_data=False)
    doc["bound"]["max_leakage"] = 0.001  # a tighter claim than the stage was certified to
    _write(bundle, doc, reseal="all")
    with pytest.raises(CascadeError, match=r"the cascade.s bound gives this stage ≤ 0\.001"):
        Cascade.load(bundle, with_data=False)
    doc = _doc(bundle)
    doc["bound"]["max_leakage"] = 0.1
    doc["stages"][0]["certificate"]["upper_bound"] = 0.0
    _write(bundle, doc, reseal="all")
    with pytest.raises(CascadeError, match="does not follow from"):
        Cascade.load(bundle, with_data=False)
    doc["stages"][0]["certificate"]["upper_bound"] = _doc(bundle)["stages"][0]["certificate"][
        "upper_bound"
    ]
    doc["stages"][0]["temperature"] = 50.0  # every probability near 0.5: other items exit
    _write(bundle, doc, reseal="all")
    with pytest.raises(CascadeError, match="not built with these thresholds"):
        Cascade.load(bundle, with_data=False)


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda d: d["stages"][0].update(temperature="2"), "'temperature' must be a positive"),
        (lambda d: d["stages"][1].pop("file"), "stage 1's file is not named (no 'file')"),
        (lambda d: d["stages"][0].update(certificate=None), "needs its 'certificate'"),
        (lambda d: d.update(stages=[d["stages"][0]]), "two stages at least"),
        (lambda d: d.update(format_version=2), "rebuild the bundle"),
    ],
)
def test_a_malformed_bundle_is_one_line_before_any_stage_opens(
    bundle: Path, items: str, edit: Any, says: str
) -> None:
    doc = _doc(bundle)
    edit(doc)
    _write(bundle, doc)
    assert_one_line_error(run_cli("cascade", "run", str(bundle), items), says)


def test_cascade_build_out_at_a_file_is_one_line(built: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    stage = str(built / "stage0-fast.ts")
    result = run_cli(
        "cascade", "build", "--stage", stage, "--stage", stage, "--data", DATA,
        "--input-shape", SHAPE, "--out", str(taken),
    )  # fmt: skip
    assert_one_line_error(result, "--out", "is a file")
    assert taken.read_text() == "not a folder"
