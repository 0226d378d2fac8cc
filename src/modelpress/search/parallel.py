"""Trials in parallel on Ray: ``--workers K`` starts a local Ray with K CPUs, ``--ray-address``
joins a cluster (the run directory on a filesystem every node sees).

The driver stays the only writer of the record. Each worker is a Ray actor holding a runner on
the same run directory that writes nothing: given a node and its lineage, it reuses the
finished ancestors from their files, builds the node (training, export, evaluation) and returns
its step entry; the driver adopts it into the record (``Runner.adopt``) as results stream in.

Honest latency: all the work of a node holds a machine-wide lock shared, and every timing
(latency, throughput, peak memory) holds it exclusively — no two benchmarks overlap, and no
training runs beside one — so a parallel search times artifacts as a serial one does. A writer
waiting at the turnstile stops new work from starting, so a benchmark never waits for more than
the nodes already running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelpress.chatter import ray_logging_level
from modelpress.errors import ModelpressError, first_line

RAY_EXTRA = "pip install 'modelpress[ray]'"


class ParallelError(ModelpressError):
    """Parallel trials that cannot start as asked."""


def require_ray(flag: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ParallelError(
            f"{flag}: parallel trials run on Ray, which is not installed: {RAY_EXTRA} "
            "(or --workers 1)"
        ) from None
    return ray


class MachineLock:
    """A readers–writer lock over the processes of one machine (two ``flock`` files in the
    temp dir: a turnstile and the lock itself)."""

    def __init__(self, name: str) -> None:
        base = Path(tempfile.gettempdir()) / f"modelpress-{name}-{socket.gethostname()}"
        self.turnstile, self.lock = Path(f"{base}.turnstile"), Path(f"{base}.lock")

    @contextlib.contextmanager
    def _held(self, path: Path, mode: int) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._held(self.turnstile, fcntl.LOCK_SH):
            pass  # a writer waiting holds the turnstile: new work waits behind it
        with self._held(self.lock, fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The machine alone: new work waits at the turnstile, running work finishes first."""
        with self._held(self.turnstile, fcntl.LOCK_EX), self._held(self.lock, fcntl.LOCK_EX):
            yield


class _Held:
    """The shared lock a worker holds while it builds a node; timings step up to exclusive.
    ``timing`` is the guard the worker's runner is given (``Runner(guard=...)``)."""

    def __init__(self, lock: MachineLock) -> None:
        self.lock = lock
        self.stack: contextlib.ExitStack | None = None
        self.worked: list[list[float]] = []  # wall-clock [start, end] of each shared hold

    def _share(self) -> None:
        self.stack = contextlib.ExitStack()
        self.stack.enter_context(self.lock.shared())
        self.worked.append([time.time()])

    def _unshare(self) -> None:
        self.worked[-1].append(time.time())
        self.stack.close()  # type: ignore[union-attr]

    @contextlib.contextmanager
    def work(self) -> Iterator[None]:
        self._share()
        try:
            yield
        finally:
            self._unshare()
            self.stack = None

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        if self.stack is None:
            with self.lock.exclusive():
                yield
            return
        self._unshare()  # give up the shared hold, wait for the machine alone
        try:
            with self.lock.exclusive():
                yield
        finally:
            self._share()


def _node_worker_class(ray: Any) -> Any:
    @ray.remote(num_cpus=1, max_restarts=1)
    class NodeWorker:
        """Builds nodes of one run directory for the driver (see the module's doc)."""

        def __init__(
            self, recipe: dict[str, Any], out: str, lock: str, coarse: int | None = None
        ) -> None:
            self.recipe, self.out = recipe, Path(out)
            self.held = _Held(MachineLock(lock))
            self.runner: Any = None
            self.coarse = coarse

        def build(self, chain: list[dict[str, Any]], deadline: float | None) -> dict[str, Any]:
            """Build the last node of ``chain``; training stops at ``deadline`` (wall clock)."""
            from modelpress.core.observer import Observer
            from modelpress.core.recipe import load_recipe
            from modelpress.core.registry import config_class
            from modelpress.engine.pipeline import Runner

            with self.held.work():
                if self.runner is None:
                    recipe = load_recipe(self.recipe)
                    self.runner = Runner(
                        recipe, self.out, Observer(), True, persist=False, guard=self.held.timing
                    )
                    self.runner.start(self.coarse)
                    self.runner.ctx.node_names = True
                else:
                    self.runner.refresh()
                self.runner.ctx.deadline = (
                    None if deadline is None else time.monotonic() + deadline - time.time()
                )
                entry: dict[str, Any] = {}
                for step in chain:
                    if self.runner.artifact(step["id"]) is not None:
                        continue
                    cls = config_class(step["type"])
                    assert cls is not None
                    entry = self.runner.add_step(cls.model_validate(step))
                    # failed or collapsed: the driver builds nothing more from it (a search's
                    # dead end, search/optimize.py ``_dead_end``)
                    if entry.get("status") not in ("ok", "degraded"):
                        break
                return {**entry, "built_by": f"worker {os.getpid()}"}

    return NodeWorker


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """A cluster address that answers on its port, checked before Ray tries (and waits long)."""
    if address == "auto":
        return
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ParallelError(
            f"--ray-address {address}: give HOST:PORT (e.g. 10.0.0.5:6379, or "
            "ray://10.0.0.5:10001), or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ParallelError(
            f"--ray-address {address}: nothing answers there ({first_line(e)}); start the "
            "cluster (ray start --head) or check the address"
        ) from None


class RayExecutor:
    """K node workers; ``submit`` a node's lineage, ``wait`` for the first to finish."""

    def __init__(
        self,
        recipe: dict[str, Any],
        out: Path,
        workers: int,
        address: str | None = None,
        worker_class: Any = None,
        coarse: int | None = None,
    ) -> None:
        self.ray = require_ray("--ray-address" if address else f"--workers {workers}")
        self.started = False
        if not self.ray.is_initialized():
            try:
                quiet = {"log_to_driver": False, "logging_level": ray_logging_level()}
                if address:
                    check_reachable(address)
                    self.ray.init(address=address, **quiet)
                else:
                    self.ray.init(num_cpus=workers, include_dashboard=False, **quiet)
            except ParallelError:
                raise
            except Exception as e:
                where = f"--ray-address {address}" if address else f"--workers {workers}"
                raise ParallelError(
                    f"{where}: Ray did not start ({first_line(e)})"
                    + ("; check the address (ray status on the head node)" if address else "")
                ) from None
            self.started = True
        cls = worker_class or _node_worker_class(self.ray)
        lock = f"bench-{abs(hash(str(out.resolve()))) % 10**8}"
        where = str(out.resolve())
        self.actors = [
            cls.remote(recipe, where, lock, *([coarse] if coarse is not None else []))
            for _ in range(workers)
        ]
        try:  # every worker up (a process each) before the first node is timed
            self.ray.get([a.__ray_ready__.remote() for a in self.actors])
        except Exception as e:
            self.close()
            raise ParallelError(
                f"--workers {workers}: a worker did not start ({first_line(e)})"
            ) from None
        self.free = list(self.actors)
        self.running: dict[Any, tuple[Any, Any]] = {}  # ref → (actor, tag)

    @property
    def idle(self) -> int:
        return len(self.free)

    def submit(self, chain: list[dict[str, Any]], tag: Any, deadline: float | None = None) -> None:
        actor = self.free.pop()
        self.running[actor.build.remote(chain, deadline)] = (actor, tag)

    def wait(self) -> tuple[Any, dict[str, Any]]:
        """(tag, the node's step entry) of the first node to finish; a worker that died gives
        a failed entry with the reason."""
        done, _ = self.ray.wait(list(self.running), num_returns=1)
        actor, tag = self.running.pop(done[0])
        self.free.append(actor)
        try:
            return tag, self.ray.get(done[0])
        except Exception as e:
            return tag, {"status": "failed", "error": f"the worker failed: {first_line(e)}"}

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()
