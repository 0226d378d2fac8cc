"""``core/rundir.OutputLock``: one process writes a run directory (or a results file) at a time;
a lock left by a killed run is taken over; released, it leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelpress.core.rundir import LOCK_NAME, output_lock
from modelpress.errors import OutputPathError

HOLD = """
import sys
from pathlib import Path
from modelpress.core.rundir import output_lock
with output_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def _holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_holds_the_pid_and_is_gone_after(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "one"
    with output_lock(out):
        info = json.loads((out / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid() and info["started"]
        (out / "record.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["record.json"]  # the lock file removed


def test_a_folder_the_lock_made_and_nothing_filled_is_removed(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    with output_lock(tmp_path / "runs" / "deep" / "one"):
        pass
    with output_lock(tmp_path / "kept"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # runs/deep/one gone again


def test_a_live_holder_is_named_and_a_killed_one_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _holder(out)
    try:
        with pytest.raises(OutputPathError) as err, output_lock(out):
            pass
        message = str(err.value)
        assert message.startswith(f"--out {out}: another modelpress run (PID {proc.pid}, started")
        assert message.endswith("is writing there; wait for it to finish, or choose another --out")
    finally:
        proc.kill()  # kill -9: no cleanup, the lock file stays with the dead PID in it
        proc.wait()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == proc.pid
    with output_lock(out):  # the kernel dropped the dead process's flock: taken over
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_without_flock_a_dead_pid_is_taken_over_and_a_live_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where flock does not work (some network mounts), the PID in the file decides."""
    import fcntl

    def no_flock(fd: int, op: int) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    (out / LOCK_NAME).write_text(json.dumps({"pid": int(dead), "started": "earlier"}))
    with output_lock(out):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    parent = os.getppid()  # alive, and not this process
    (out / LOCK_NAME).write_text(json.dumps({"pid": parent, "started": "now"}))
    with pytest.raises(OutputPathError, match=f"PID {parent}, started now"), output_lock(out):
        pass
