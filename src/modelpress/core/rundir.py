"""The run directory: every file written atomically, so an interrupted run loses nothing.

runs/NAME/
  recipe.yaml  env.json  record.json
  nodes/KEY/   (a node's files: outputs.npz, training checkpoints, error.txt)
  artifacts/   report.md  report.html  plots/
  .modelpress.lock  (while a run writes here: its PID; ``OutputLock``)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
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


RUN_FOLDERS = ("nodes", "steps", "artifacts", "plots")  # a run's files (steps: before nodes/)


def clear_run(root: Path, *documents: str) -> None:
    """--force: the replaced run's record, its ``documents`` (a search's journal, its best
    recipe) and its folders removed, so nothing of it is read again or shown in a report."""
    for name in ("record.json", *documents):
        (root / name).unlink(missing_ok=True)
    for folder in RUN_FOLDERS:
        shutil.rmtree(root / folder, ignore_errors=True)


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
        """Write ``record.json``, validated against the record's typed schema first
        (core/record_schema.py): a field of the wrong type is a bug caught where it is made."""
        from modelpress.core.record_schema import check_record

        check_record(record)
        write_json_atomic(self.record_path, record)

    def relative(self, path: Path | str) -> str:
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)


# --------------------------------------------------------------------------- the output lock

LOCK_NAME = ".modelpress.lock"  # in a run directory; beside a file output: .NAME.lock


def _lock_path(path: Path, folder: bool) -> Path:
    return path / LOCK_NAME if folder else path.parent / f".{path.name}.lock"


def _holder(text: str) -> str:
    """Who holds a lock, from its file: ``PID 123, started 12:00:03: modelpress run r.yaml``."""
    try:
        info = json.loads(text)
        pid, started, command = info["pid"], info.get("started", "?"), info.get("command", "")
    except (ValueError, TypeError, KeyError):
        return "PID unknown"
    return f"PID {pid}, started {started}" + (f": {command}" if command else "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _created_folders(path: Path) -> list[Path]:
    """The folders ``path.mkdir(parents=True)`` would create, deepest first."""
    made = []
    while not _exists(path) and path != path.parent:
        made.append(path)
        path = path.parent
    return made


class OutputLock:
    """An exclusive lock on an output (a run directory, or a file a command writes) held by one
    process: ``LOCK_NAME`` inside the folder (``.NAME.lock`` beside a file) holds the holder's
    PID, and ``fcntl.flock`` on it is released by the kernel when the process ends however it
    ends, so a lock left by a killed run is simply taken over. A second run into the same place
    gets one line naming the first's PID. Released on exit: the lock file is removed, and the
    folders the lock made are removed again if nothing was written in them.

    (Not ``filelock``: it truncates the file on open, so a waiting process would erase the
    holder's PID before it could read it.)"""

    def __init__(self, path: Path, flag: str = "--out", *, folder: bool = True) -> None:
        self.path, self.flag, self.folder = path, flag, folder
        self.file = _lock_path(path, folder)
        self.fd: int | None = None
        self.made: list[Path] = []

    def __enter__(self) -> OutputLock:
        self.made = _created_folders(self.file.parent)
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputPathError(
                f"{self.flag} {self.path}: cannot be created ({first_line(e)}); choose another "
                f"{self.flag}"
            ) from None
        try:
            self._acquire()
        except BaseException:
            self._remove_made()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _refuse(self, holder: str) -> OutputPathError:
        return OutputPathError(
            f"{self.flag} {self.path}: another modelpress run ({holder}) is writing there; wait "
            f"for it to finish, or choose another {self.flag}"
        )

    def _acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the PID alone says whether the lock is held
            self._acquire_by_pid()
            return
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
                os.close(fd)
                raise self._refuse(holder) from None
            except OSError:  # a file system without flock (some network mounts)
                os.close(fd)
                self._acquire_by_pid()
                return
            try:  # the holder may have removed the file as we opened it: lock the one on disk
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._describe().encode(), 0)

    def _acquire_by_pid(self) -> None:
        try:
            text = self.file.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        if text:
            try:
                pid = int(json.loads(text)["pid"])
            except (ValueError, TypeError, KeyError):
                pid = None
            if pid is not None and pid != os.getpid() and _pid_alive(pid):
                raise self._refuse(_holder(text))
        self.file.write_text(self._describe())  # a dead holder's lock is taken over
        self.fd = -1

    def _describe(self) -> str:
        import sys
        from datetime import datetime

        command = " ".join(["modelpress", *sys.argv[1:]])[:200] if sys.argv else ""
        started = datetime.now().isoformat(timespec="seconds")
        return json.dumps({"pid": os.getpid(), "started": started, "command": command})

    def release(self) -> None:
        if self.fd is None:
            return
        self.file.unlink(missing_ok=True)  # before unlocking: a waiter then re-checks the inode
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = None
        self._remove_made()

    def _remove_made(self) -> None:
        for folder in self.made:  # deepest first; only folders left empty
            try:
                folder.rmdir()
            except OSError:
                break


def output_lock(path: Path, flag: str = "--out", *, folder: bool = True) -> OutputLock:
    """``with output_lock(out):`` — see ``OutputLock``."""
    return OutputLock(path, flag, folder=folder)


def holding_output(
    param: str, flag: str = "--out", *, folder: bool, example: str = "out"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command: its output (the keyword argument ``param``; None: nothing written)
    is checked (``check_output``) and held (``output_lock``) while it runs."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            path = kwargs.get(param)
            if path is None:
                return fn(*args, **kwargs)
            check_output(Path(path), flag, folder=folder, example=example)
            with output_lock(Path(path), flag, folder=folder):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
