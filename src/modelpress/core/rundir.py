"""The run directory: every file written atomically, so an interrupted run loses nothing.

runs/NAME/
  recipe.yaml  env.json  record.json
  nodes/KEY/   (a node's files: outputs.npz, training checkpoints, error.txt)
  artifacts/   report.md  report.html  plots/
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from modelpress.errors import OutputPathError, ResumeError, first_line

# What a recipe name or step name may be: it becomes a folder or file name in the run directory
# (runs/NAME, steps/01-NAME, artifacts/model-fp32-NAME.onnx), so no separators, no leading dot.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def check_name(value: str) -> str:
    """``value`` if it is safe as a file name; a ValueError (pydantic reports its field) if not."""
    if not _SAFE_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} cannot name a folder or file: use letters, digits, '.', '_' and '-', "
            "not starting with '.', at most 64 characters"
        )
    return value


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write temp file in the same folder, fsync, rename over the target, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; keep the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


_NUMBER_LIST = re.compile(r"\[\s+([-+\d.eE,\s]+?|(?:null|true|false|[-+\d.eE]+|,|\s)+?)\s+\]")


def to_json(data: Any) -> str:
    """Indented JSON with lists of plain numbers kept on one line (confusion matrices)."""
    text = json.dumps(data, indent=2, default=_json_default, allow_nan=True)
    return _NUMBER_LIST.sub(
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text
    )


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, to_json(data) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def stable_hash(data: Any) -> str:
    """Hash of plain data, independent of key order (config hashes for --resume)."""
    text = json.dumps(data, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a folder on the way that we may not list
        return False


def check_output(path: Path, flag: str, *, folder: bool, example: str = "out") -> None:
    """Before any work starts: ``path`` can be written as a folder (a run directory) or a file.

    Read-only is decided by ``os.access`` on the folder that would receive the writes (the
    nearest one that exists): it sees read-only mounts and permission bits, and agrees with the
    kernel for root, who may write where the bits say no."""
    if _exists(path):
        if folder and not path.is_dir():
            raise OutputPathError(
                f"{flag} {path}: is a file, and a run directory is a folder; choose another {flag}"
            )
        if not folder and path.is_dir():
            raise OutputPathError(
                f"{flag} {path}: is a folder; give a file path, e.g. {path / example}"
            )
        target = path if folder else path.parent
    else:
        target = path.parent
        while not _exists(target) and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise OutputPathError(
                f"{flag} {path}: {target} is a file, so nothing can be created under it; "
                f"choose another {flag}"
            )
    if not os.access(target, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{flag} {path}: cannot write in {target} (read-only); choose another {flag} "
            "in a folder you can write to"
        )


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def record_path(self) -> Path:
        return self.root / "record.json"

    @property
    def recipe_path(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def node_dir(self, key: str) -> Path:
        """A node's folder, named by its key: its outputs, training checkpoints, error.txt."""
        path = self.root / "nodes" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(exist_ok=True)

    def read_record(self) -> dict[str, Any] | None:
        """The earlier run's record, or None; a damaged one (an interrupted copy, a hand edit)
        stops ``--resume`` with a one-line error instead of a traceback."""
        if not self.record_path.is_file():
            return None
        fix = "drop --resume and pass --force to start over"
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            what = (
                f"{e.msg} line {e.lineno}, column {e.colno}"
                if isinstance(e, json.JSONDecodeError)
                else first_line(e)
            )
            raise ResumeError(
                f"{self.record_path}: not a readable run record (truncated? {what}); {fix}"
            ) from None
        steps = record.get("steps", []) if isinstance(record, dict) else None
        if (
            not isinstance(steps, list)
            or not all(isinstance(s, dict) for s in steps)
            or not isinstance(record.get("identity", {}), dict)
            or not isinstance(record.get("baseline"), dict | None)
        ):
            raise ResumeError(
                f"{self.record_path}: not a run record (a JSON object with identity and steps); "
                f"{fix}"
            )
        return record

    def write_record(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.record_path, record)

    def relative(self, path: Path | str) -> str:
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)
