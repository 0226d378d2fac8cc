"""What a cascade bundle may hold, and the checks a received one passes before anything runs.

A bundle travels: one person builds it, another deploys it. So nothing in it chooses code to
run, and nothing in it is taken on its word:

- a stage is a deployed file (ONNX, LiteRT ``.tflite``, OpenVINO IR ``.xml`` + ``.bin``, a
  ``.pt2`` ExportedProgram, TorchScript), opened by its format's own loader — never handed to the
  model loader as a source string, which could name a Python factory (``evil.py:make``);
- every file ``cascade.json`` names is a plain file name that resolves, symlinks followed, to a
  file directly inside the bundle;
- ``cascade.json`` records the SHA-256 of every file it names and of its own content; a file
  or a figure changed after the build stops the load (``check_integrity``);
- the certificates are recounted from the calibration evidence the bundle carries
  (``deploy/evidence.py``).

Reading cascade.json (``read_doc``, ``stages_of``, ``input_specs``) checks every field it
uses and names it in one line; ``write_doc`` seals what a build measured.

A digest is not a signature: whoever rewrites a stage, its calibration scores and every digest
consistently has made a new bundle, not edited this one; what these checks catch is a bundle
that says something its own contents do not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpress.deploy.routing import BUCKET_KINDS, CascadeError

if TYPE_CHECKING:
    from modelpress.deploy.exits import ExitRule
    from modelpress.deploy.stage import Stage
    from modelpress.runtimes.base import Runtime
    from modelpress.sources.inputs import InputSpec
    from modelpress.tasks.base import Task

BUNDLE_FILE = "cascade.json"
FORMAT_VERSION = 3  # 3: stage files deployed formats only, digests, calibration evidence
INTEGRITY_KEY = "integrity"
# suffix → how the stage file is opened; a .pt is TorchScript or nothing (never a checkpoint)
STAGE_FORMATS = {
    ".onnx": "onnx",
    ".tflite": "tflite",
    ".xml": "openvino",
    ".pt2": "exported",
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".jit": "torchscript",
}


def deployed_kind(path: Path) -> str | None:
    """How ``path`` opens as a deployed stage (``STAGE_FORMATS``), or None when it is not one
    (a modelpress checkpoint, a weights file, anything else)."""
    from modelpress.sources.models import is_torchscript

    kind = STAGE_FORMATS.get(path.suffix.lower())
    if kind == "torchscript" and not is_torchscript(path):
        return None
    return kind


def member(bundle: Path, name: Any, what: str) -> Path:
    """``bundle/name``, resolved, for a plain file name that lands directly inside the bundle
    (no folder part, no symlink leading out) and is a file; else one line naming it."""
    where = bundle / BUNDLE_FILE
    plain = isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name
    if not plain or "\\" in name or "\0" in name:
        raise CascadeError(
            f"{where}: {what} {name!r} is not a plain file name inside the bundle; a bundle "
            "names its own files only (rebuild it with modelpress cascade build)"
        )
    path = (bundle / name).resolve()
    if path.parent != bundle.resolve():
        raise CascadeError(f"{where}: {what} {name} lies outside the bundle (a symlink out)")
    if not path.is_file():
        raise CascadeError(f"{where}: {what} {name} is missing from the bundle")
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_digest(doc: dict[str, Any]) -> str:
    """SHA-256 of ``doc`` as canonical JSON, its integrity block left out."""
    body = {k: v for k, v in doc.items() if k != INTEGRITY_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def named_files(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(file name, what it is) for every file ``doc`` names: stages (and an OpenVINO stage's
    weights), the meta-model's file, the calibration evidence."""
    out = []
    for i, s in enumerate(doc.get("stages") or []):
        file = s.get("file") if isinstance(s, dict) else None
        out.append((file, f"stage {i}'s file"))
        if isinstance(file, str) and file.lower().endswith(".xml"):
            out.append((str(Path(file).with_suffix(".bin")), f"stage {i}'s weights"))
    meta = doc.get("meta_model")
    if isinstance(meta, dict) and "file" in meta:
        out.append((meta["file"], "the meta-model file"))
    if "evidence" in doc:
        out.append((doc["evidence"], "the calibration evidence"))
    return out


def seal(bundle: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its integrity block: the digest of each file it names and of itself."""
    doc = json.loads(json.dumps({k: v for k, v in doc.items() if k != INTEGRITY_KEY}))
    files = {name: sha256(member(bundle, name, what)) for name, what in named_files(doc)}
    seal_ = {"algorithm": "sha256", "files": files, "content": content_digest(doc)}
    return {**doc, INTEGRITY_KEY: seal_}


def check_integrity(bundle: Path, doc: dict[str, Any]) -> None:
    """Raise one line when ``doc`` (the parsed cascade.json) is not as its build sealed it: an
    older format, a changed figure, a file named outside the bundle, missing or changed."""
    where = bundle / BUNDLE_FILE
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise CascadeError(
            f"{where}: format {version!r}, and this modelpress opens format {FORMAT_VERSION} "
            "(stages as deployed files, with digests and calibration evidence); rebuild the "
            "bundle with modelpress cascade build"
        )
    seal_ = doc.get(INTEGRITY_KEY)
    files = seal_.get("files") if isinstance(seal_, dict) else None
    if not isinstance(files, dict) or not isinstance(seal_.get("content"), str):
        raise CascadeError(f"{where}: no integrity block; rebuild it with modelpress cascade build")
    if content_digest(doc) != seal_["content"]:
        raise CascadeError(
            f"{where}: its content does not match its digest: it was edited after it was built "
            "(thresholds, temperatures and the certificate are what was measured, not settings); "
            "rebuild it with modelpress cascade build"
        )
    for name, what in named_files(doc):
        path = member(bundle, name, what)
        if files.get(name) != sha256(path):
            raise CascadeError(
                f"{where}: {what} {name} is not the file the bundle was built with (its SHA-256 "
                "differs); rebuild it with modelpress cascade build"
            )


def open_stage_file(
    path: Path, threads: int | None, specs: list[InputSpec] | None = None
) -> tuple[Runtime, list[InputSpec]]:
    """(a stage's runtime, the float inputs it takes) for a deployed file, with no data loaded.
    The inputs are ``specs`` where given (what the bundle was built with), else the file's own
    (ONNX, LiteRT); TorchScript, ``.pt2`` and OpenVINO stages need ``specs``."""
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import deployed_artifact
    from modelpress.evaluate.benchmark import timing_threads
    from modelpress.runtimes import runtime_for
    from modelpress.sources.models import load_exported

    kind = deployed_kind(path)
    if kind in ("onnx", "tflite"):
        artifact = deployed_artifact(path)  # cascades never normalise
        specs = specs or artifact.input_specs
    elif kind is None:
        raise CascadeError(
            f"{path}: not a deployed model file; a cascade stage is "
            f"{', '.join(sorted(set(STAGE_FORMATS)))} (TorchScript for .pt)"
        )
    elif not specs:
        raise CascadeError(f"{path}: a {kind} stage needs the bundle's input shapes ('inputs')")
    elif kind == "exported":
        artifact = Artifact("stage", "torch", specs, module=load_exported(path), path=path)
    else:
        artifact = Artifact("stage", kind, specs, path=path)  # type: ignore[arg-type]
    return runtime_for(artifact, timing_threads(threads)), list(specs)


# ---------------------------------------------------------------------- cascade.json


def read_doc(bundle: Path) -> dict[str, Any]:
    """BUNDLE/cascade.json as a dict; one line when there is none or it is not JSON."""
    path = bundle / BUNDLE_FILE
    if not path.is_file():
        raise CascadeError(
            f"{bundle}: not a cascade bundle (no {BUNDLE_FILE}); build one "
            "with modelpress cascade build"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise CascadeError(f"{path}: not a readable cascade description ({e})") from None
    if not isinstance(doc, dict):
        raise CascadeError(f"{path}: not a cascade description (a JSON object is expected)")
    return doc


def write_doc(bundle: Path, doc: dict[str, Any]) -> None:
    """BUNDLE/cascade.json, sealed (``seal``: the digest of every file it names and of its
    own content), written atomically."""
    tmp = bundle / f".{BUNDLE_FILE}.tmp"
    tmp.write_text(json.dumps(seal(bundle, {"format_version": FORMAT_VERSION, **doc}), indent=2))
    tmp.replace(bundle / BUNDLE_FILE)


def stages_of(bundle: Path, doc: dict[str, Any]) -> tuple[list[Stage], Task, ExitRule]:
    """(the bundle's stages as cascade.json describes them, runtimes not opened; its task and
    that task's exit rule), every field checked: one line naming the stage and the field."""
    from modelpress.deploy.exits import cascade_task, summary
    from modelpress.deploy.stage import Stage

    path = bundle / BUNDLE_FILE
    task, rule = cascade_task(doc.get("task"), where=str(path))
    specs = doc.get("stages")
    if not isinstance(specs, list) or len(specs) < 2:
        raise CascadeError(f"{path}: 'stages' must list two stages at least")
    if not isinstance(doc.get("evidence"), str):
        raise CascadeError(f"{path}: names no calibration evidence; rebuild the bundle")
    flip = rule.flips(doc)
    stages = []
    last = len(specs) - 1
    for i, s in enumerate(specs):
        where = f"{path}: stage {i}"
        if not isinstance(s, dict):
            raise CascadeError(f"{where} is not an object")
        for key in ("name", "file"):
            if not isinstance(s.get(key), str):
                raise CascadeError(f"{where}: '{key}' must be a string")
        t = s.get("temperature")
        if not isinstance(t, int | float) or isinstance(t, bool) or not 0 < t < float("inf"):
            raise CascadeError(f"{where}: 'temperature' must be a positive number, not {t!r}")
        cert, buckets = s.get("certificate"), s.get("buckets")
        if i < last and not isinstance(cert, dict):
            raise CascadeError(f"{where}: an early stage needs its 'certificate'")
        if i == last and (cert is not None or buckets is not None):
            raise CascadeError(f"{where}: the last stage decides everything left; no certificate")
        if buckets is not None and not (
            isinstance(buckets, dict)
            and buckets.get("by") in BUCKET_KINDS
            and isinstance(buckets.get("edges"), list)
            and isinstance(buckets.get("certificates"), list)
            and len(buckets["certificates"]) == len(buckets["edges"]) + 1
        ):
            raise CascadeError(f"{where}: 'buckets' is not a set of bins with a certificate each")
        if buckets is not None and cert != summary(buckets):
            raise CascadeError(f"{where}: its certificate is not the summary of its bins' own")
        calibration = s.get("calibration") if isinstance(s.get("calibration"), dict) else {}
        stages.append(
            Stage(s["name"], s["file"], float(t), calibration, cert, None, buckets, task, flip)
        )
    return stages, task, rule


def input_specs(bundle: Path, doc: dict[str, Any]) -> list[InputSpec] | None:
    """The inputs the stages were built and calibrated on (None: a bundle without them)."""
    from modelpress.errors import RecipeError
    from modelpress.sources.inputs import parse_input_shape

    shape = doc.get("inputs") or doc.get("input_shape")
    try:
        return parse_input_shape(shape) if shape else None
    except RecipeError as e:
        raise CascadeError(f"{bundle / BUNDLE_FILE}: 'inputs' {e}") from None
