"""Run the per-input work (parse one log, reduce it to session partials) on the inputs, in
their canonical order: here, in spawned worker processes, or on a Dask cluster.

Results come back in input order whatever finished first, so the merged session table is the
same for any ``jobs`` and any scheduler. A worker that dies or a task that fails is reported
for its input (``Failed``) and the other inputs still complete.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

from loganalyzer.entry import MAIN_ALLOCATOR_ENV
from loganalyzer.errors import LogAnalyzerError
from loganalyzer.sources import disk_size
from loganalyzer.sources.files import LogInput

#: Inputs smaller than this in total are read in this process (starting workers costs more).
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
#: Environment variable naming a Dask scheduler (``--scheduler``).
SCHEDULER_ENV = "LOGANALYZER_DASK_SCHEDULER"
#: Seconds to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT_S = 30


@dataclass(frozen=True)
class Failed:
    """An input whose work did not complete: why (the worker died, the task raised)."""

    reason: str


Task = LogInput | list[LogInput]  # one input, or the inputs of one folder


def task_bytes(task: Task) -> int:
    """Bytes on disk of a task's inputs."""
    return sum(disk_size(log) for log in (task if isinstance(task, list) else [task]))


def parallel_worth_it(
    tasks: list, jobs: int, min_bytes: int | None = None, size: Callable = task_bytes
) -> bool:
    """Workers pay off: more than one core and task, and enough to read (``size(task)``
    bytes each)."""
    limit = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    return jobs > 1 and len(tasks) > 1 and sum(size(t) for t in tasks) >= limit


def run_inputs(
    tasks: list[Task],
    work: Callable,
    *,
    jobs: int,
    scheduler=None,
    parallel: bool = True,
) -> Iterator[tuple[Task, object]]:
    """Yield ``(task, work(task) or Failed)`` for every task, in the order given.

    ``jobs``: cores for this run (worker processes, each running Polars single-threaded).
    ``scheduler``: None (this machine), ``"local"`` (a Dask LocalCluster with ``jobs``
    single-threaded workers), a scheduler address, or a ``distributed.Client``.
    ``parallel=False`` runs every task here, in this process.
    """
    if scheduler is not None:
        yield from _on_dask(tasks, work, jobs, scheduler)
    elif not parallel:
        for task in tasks:
            yield task, work(task)
    else:
        yield from _in_processes(tasks, work, jobs)


def _in_processes(tasks: list[Task], work: Callable, jobs: int):
    """Spawned worker processes, largest task first. When this process runs Polars on one
    thread (as the console command sets it up), it works too, beside ``jobs - 1`` workers:
    whoever is free takes the next task (the first one always goes to a worker).

    When a worker dies (the pool breaks), the tasks the workers had run again one per fresh
    process, so only the task that kills a worker fails; the tasks not yet started still run
    (here when this process works, else each in a fresh process too).
    """
    here = main_takes_part()
    queue = _TaskQueue(tasks, work, workers=min(jobs - 1 if here else jobs, len(tasks)))
    done = 0
    try:
        while here and (index := queue.take_next()) is not None:
            queue.results[index] = work(tasks[index])
            while done < len(tasks) and queue.ready(done):  # handed on in order meanwhile
                yield tasks[done], queue.result(done)
                done += 1
        for index in range(done, len(tasks)):
            yield tasks[index], queue.result(index)
    finally:
        queue.close()


def main_takes_part() -> bool:
    """Does this process work alongside its workers? Only when its Polars thread pool is one
    thread: a pool of more would compete with the workers for the same cores."""
    import polars as pl

    return pl.thread_pool_size() == 1


class _TaskQueue:
    """Tasks fed to a spawned pool in order, ``workers`` at a time (a thread submits the next
    one when one finishes), so that the others stay free for this process to take."""

    def __init__(self, tasks: list[Task], work: Callable, workers: int):
        self.tasks, self.work = tasks, work
        self.pending = deque(range(len(tasks)))
        self.futures: dict[int, Future] = {}
        self.results: dict[int, object] = {}
        self.lock = threading.Condition()  # notified when a task is submitted or feeding ends
        self.feeding = workers > 0
        self.pool = None
        if not self.feeding:
            return
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        with worker_environment():
            running = {future for _ in range(workers) if (future := self._submit_next())}
        threading.Thread(target=self._feed, args=(running,), daemon=True).start()

    def take_next(self) -> int | None:
        with self.lock:
            return self.pending.popleft() if self.pending else None

    def ready(self, index: int) -> bool:
        future = self.futures.get(index)
        return index in self.results or (future is not None and future.done())

    def result(self, index: int) -> object:
        """The task's result: run here, from a worker, or (its worker died, or it never
        started because the pool broke) from a fresh process of its own."""
        if index in self.results:
            return self.results.pop(index)
        with self.lock:
            while self.feeding and index not in self.futures:
                self.lock.wait()  # its turn to be submitted comes
            future = self.futures.pop(index, None)
            if future is None:
                self.pending.remove(index)  # never started: the pool broke first
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:
                pass
        return run_isolated(self.tasks[index], self.work)

    def close(self) -> None:
        """Workers wind down while the caller goes on with the results."""
        with self.lock:
            self.pending.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _submit_next(self) -> Future | None:
        with self.lock:  # taken and submitted at once: result() never sees it in between
            if not self.pending:
                return None
            index = self.pending.popleft()
            try:
                future = self.pool.submit(self.work, self.tasks[index])
            except BaseException:  # broken or shut down meanwhile: the task was not started
                self.pending.appendleft(index)
                raise
            self.futures[index] = future
            self.lock.notify_all()
            return future

    def _feed(self, running: set[Future]) -> None:
        try:
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    if future.cancelled() or isinstance(future.exception(), BrokenProcessPool):
                        return  # closed, or broken: result() deals with what is left
                    if (following := self._submit_next()) is not None:
                        running.add(following)
        except (BrokenProcessPool, RuntimeError):  # broken, or shut down, meanwhile
            pass
        finally:
            with self.lock:
                self.feeding = False
                self.lock.notify_all()


def run_isolated(task: Task, work: Callable) -> object:
    """``work(task)`` in a fresh process of its own: its result, or Failed if it died."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        with worker_environment():
            future = pool.submit(work, task)
        try:
            return future.result()
        except BrokenProcessPool:
            return Failed("the worker process died while reading it")


def absolute_paths(task):
    """The task with absolute paths, for workers whose working folder is another (a log, a
    folder's logs; tasks of other kinds are sent as they are: their makers use this on their
    logs)."""
    if isinstance(task, list):
        return [absolute_paths(log) for log in task]
    if isinstance(task, LogInput):
        return replace(task, disk_path=Path(os.path.abspath(task.disk_path)))
    return task


def _on_dask(tasks: list[Task], work: Callable, jobs: int, scheduler):
    client, owned = _dask_client(scheduler, jobs)
    try:
        futures = client.map(work, [absolute_paths(t) for t in tasks], pure=False)
        for task, future in zip(tasks, futures, strict=True):
            try:
                yield task, future.result()
            except LogAnalyzerError:
                raise  # --strict: the first malformed row stops the run, as here
            except Exception as err:  # a task that raised, or a worker that kept dying
                yield task, Failed(f"failed on the Dask cluster: {type(err).__name__}: {err}")
            finally:
                future.release()
    finally:
        if owned:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()


def _dask_client(scheduler, jobs: int):
    """(client, whether we made it) for ``"local"``, an address or a Client."""
    try:
        from distributed import Client
    except ImportError:
        raise LogAnalyzerError("--scheduler needs Dask: pip install 'loganalyzer[dask]'") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    if scheduler == "local":
        return Client(local_cluster(jobs)), True
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S), True
    except (OSError, TimeoutError) as err:
        raise LogAnalyzerError(f"cannot reach the Dask scheduler {scheduler}: {err}") from None


def local_cluster(workers: int):
    """A Dask ``LocalCluster`` of ``workers`` single-threaded worker processes (``--scheduler
    local``), without a dashboard, and so without the statistical profiler that only feeds the
    dashboard: it samples every worker's stack every 10 ms (the run took 3-4% longer with it,
    in 5 of 6 alternating runs on 1 GB)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": False}), worker_environment():
        return LocalCluster(
            n_workers=max(workers, 1), threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=50,
        )  # fmt: skip


def on_this_machine(scheduler) -> bool:
    """Does every worker run on this machine (so that it can hand results over in files)?

    True for local processes (None), ``"local"``, a scheduler on a loopback address, and a
    ``distributed.Client`` whose workers all listen on loopback addresses.
    """
    if scheduler is None or scheduler == "local":
        return True
    if isinstance(scheduler, str):
        return _loopback(scheduler)
    try:
        workers = scheduler.scheduler_info()["workers"]
    except Exception:  # not a Client, or it cannot tell: send results over the network
        return False
    return bool(workers) and all(_loopback(address) for address in workers)


def _loopback(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def resolve_scheduler(scheduler):
    """The scheduler to use: the argument, else ``LOGANALYZER_DASK_SCHEDULER``, else None."""
    return scheduler if scheduler is not None else (os.environ.get(SCHEDULER_ENV) or None)


@contextlib.contextmanager
def worker_environment():
    """While workers start: single-threaded Polars, and no re-run of the caller's script.

    Spawned workers normally import the parent's ``__main__`` (a user's script or notebook);
    ours need only loganalyzer, so the main module is hidden from multiprocessing meanwhile.
    """
    main = sys.modules.get("__main__")
    saved = {
        name: main.__dict__[name]
        for name in ("__file__", "__spec__")
        if main and name in main.__dict__
    }
    previous = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = "1"  # inherited by the workers spawned meanwhile
    allocator = os.environ.pop(MAIN_ALLOCATOR_ENV, None)  # the main's setting, not theirs
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
        if previous is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = previous
        if allocator is not None:
            os.environ[MAIN_ALLOCATOR_ENV] = allocator
