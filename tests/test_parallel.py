"""Parallel runs: worker processes (--jobs) and a Dask cluster (--scheduler) give the same
session table and findings as --jobs 1, in the same order; a worker that dies is reported.

The cluster tests share one LocalCluster (2 single-threaded workers) per module and have
generous timeouts, so a loaded 2-core CI machine does not make them flaky.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import loganalyzer
import loganalyzer.logsets
import loganalyzer.parallel
import loganalyzer.sessions
import loganalyzer.store
from loganalyzer.cli import app
from loganalyzer.entry import MAIN_ALLOCATOR_ENV, jobs_from_args, prepare_environment
from loganalyzer.errors import LogParseError
from loganalyzer.findings import find_issues
from loganalyzer.inventory.reader import read_files
from loganalyzer.sessions import folder_tasks, split_tail
from loganalyzer.sources import ReadStats, find_logs
from loganalyzer.sources.files import LogInput
from loganalyzer.worker import CRASH_FOR_TESTS
from tests.conftest import SAMPLE_LOGS
from tests.helpers import load_corpus_generator

INCIDENT = SAMPLE_LOGS / "incident"
NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)

generate_corpus = load_corpus_generator()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A small multi-server corpus whose sessions cross file boundaries."""
    folder = tmp_path_factory.mktemp("corpus")
    generate_corpus.generate(folder, 1_000_000, seed=5, servers=2, file_size=120_000)
    return folder


@pytest.fixture(scope="module")
def inventory():
    return read_files([INCIDENT / "inventory"])


def _findings(sessions, inventory):
    return find_issues(sessions, inventory.certificates, inventory.connectors, now=NOW)


@pytest.fixture(scope="module")
def serial(corpus):
    return {
        "incident": loganalyzer.read_sessions(INCIDENT, jobs=1),
        "corpus": loganalyzer.read_sessions(corpus, jobs=1),
    }


@pytest.fixture
def always_parallel(monkeypatch):
    monkeypatch.setattr(loganalyzer.sessions, "PARALLEL_MIN_BYTES", 0)


@pytest.fixture(params=["workers only", "main works too"])
def main_works(request, monkeypatch):
    """Both ways of running --jobs: this process only waits for its workers (its Polars has
    several threads, as in a notebook), or works beside them (one thread, as the command)."""
    works = request.param == "main works too"
    monkeypatch.setattr(loganalyzer.parallel, "main_takes_part", lambda: works)
    return works


def _whose(task) -> tuple[object, int]:
    return task, os.getpid()


def test_the_main_process_works_beside_its_workers(monkeypatch):
    monkeypatch.setattr(loganalyzer.parallel, "main_takes_part", lambda: True)
    tasks = list(range(6))
    results = list(loganalyzer.parallel.run_inputs(tasks, _whose, jobs=2))
    assert [task for task, _ in results] == tasks  # in order, whoever ran them
    assert [echo for _, (echo, _) in results] == tasks
    pids = [pid for _, (_, pid) in results]
    assert pids[0] != os.getpid()  # the first task always goes to the worker
    assert os.getpid() in pids[1:]  # the others are taken by whoever is free; here did some


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


@pytest.mark.parametrize("name", ["incident", "corpus"])
def test_two_worker_processes_match_one_core(
    name, corpus, serial, inventory, always_parallel, main_works
):
    path = INCIDENT if name == "incident" else corpus
    df = loganalyzer.read_sessions(path, jobs=2)
    _same(df, serial[name])  # file and line included: the same order, the same evidence
    _same(_findings(df, inventory), _findings(serial[name], inventory))


def test_workers_hand_tables_over_in_files_and_leave_none(
    corpus, serial, always_parallel, monkeypatch, tmp_path
):
    monkeypatch.setattr(loganalyzer.sessions, "SPILL_ROOT", str(tmp_path))
    loaded = []
    original = loganalyzer.logsets.SpilledSessions.load
    monkeypatch.setattr(
        loganalyzer.logsets.SpilledSessions,
        "load",
        lambda self: loaded.append(Path(self.path).parent.parent) or original(self),
    )
    df = loganalyzer.read_sessions(corpus, jobs=2)
    _same(df, serial["corpus"])
    assert loaded and set(loaded) == {tmp_path}  # every folder's table came through a file
    assert list(tmp_path.iterdir()) == []


def test_a_worker_that_dies_is_reported_and_the_rest_completes(
    corpus, always_parallel, main_works, monkeypatch
):
    files = sorted(p for p in corpus.rglob("*.LOG"))
    largest_folder = folder_tasks(find_logs([corpus], ReadStats()), 2)[0]  # always a worker's
    victim = Path(largest_folder[len(largest_folder) // 2].name)
    monkeypatch.setenv(CRASH_FOR_TESTS, str(victim.relative_to(corpus)))
    df = loganalyzer.read_sessions(corpus, jobs=2)
    skipped = df.attrs["read_stats"]["skipped"]
    assert skipped == [{"file": str(victim), "reason": "the worker process died while reading it"}]
    assert df.attrs["read_stats"]["files"] == len(files) - 1
    others = loganalyzer.read_sessions([str(f) for f in files if f != victim], jobs=1)
    assert len(df) == len(others)
    with pytest.raises(LogParseError, match="worker process died"):
        loganalyzer.read_sessions(corpus, jobs=2, strict=True)


def _folder(root: Path, name: str, *sizes: int) -> list[LogInput]:
    (root / name).mkdir()
    logs = []
    for i, size in enumerate(sizes):
        path = root / name / f"RECV{i}.LOG"
        path.write_bytes(b"x" * size)
        logs.append(LogInput(str(path), path))
    return logs


@pytest.mark.parametrize(
    ("sizes", "jobs", "whole"),
    [
        ([900, 600, 400, 300], 2, 2),  # the tail holds (jobs - 1) x the smallest whole folder
        ([900, 600, 400, 300], 3, 2),  # ... but no more than 2200 / 3 bytes
        ([400, 300, 300], 2, 2),  # 300 + 300 would pass one process's share (500)
        ([100] * 8, 8, 7),  # one process's share: one folder
        ([500, 100], 2, 1),  # one folder always stays whole
    ],
)
def test_the_smallest_folders_come_last_split_into_their_files(tmp_path, sizes, jobs, whole):
    folders = [_folder(tmp_path, f"f{i}", *([size // 4] * 4)) for i, size in enumerate(sizes)]
    tasks = split_tail(folders, jobs)
    assert tasks[:whole] == folders[:whole]
    assert tasks[whole:] == [log for folder in folders[whole:] for log in folder]


def test_the_corpus_runs_end_with_split_folders(corpus):
    """The runs compared with one core above take both kinds of task."""
    tasks = split_tail(folder_tasks(find_logs([corpus], ReadStats()), 2), 2)
    assert isinstance(tasks[0], list)
    assert isinstance(tasks[-1], LogInput)


def test_a_worker_that_dies_on_a_file_of_a_split_folder_is_reported(
    corpus, always_parallel, monkeypatch
):
    monkeypatch.setattr(loganalyzer.parallel, "main_takes_part", lambda: False)  # workers only
    files = sorted(p for p in corpus.rglob("*.LOG"))
    tasks = split_tail(folder_tasks(find_logs([corpus], ReadStats()), 2), 2)
    victim = Path(tasks[-2].name)  # a file of the last folder, not its last file
    monkeypatch.setenv(CRASH_FOR_TESTS, str(victim.relative_to(corpus)))
    df = loganalyzer.read_sessions(corpus, jobs=2)
    skipped = df.attrs["read_stats"]["skipped"]
    assert skipped == [{"file": str(victim), "reason": "the worker process died while reading it"}]
    others = loganalyzer.read_sessions([str(f) for f in files if f != victim], jobs=1)
    _same(df, others)


@pytest.fixture(scope="module")
def cluster():
    """The LocalCluster ``--scheduler local`` makes, with 2 workers."""
    distributed = pytest.importorskip("distributed")
    with (
        loganalyzer.parallel.local_cluster(2) as local,
        distributed.Client(local, timeout=120) as client,
    ):
        yield client


def _profiler_enabled() -> bool:
    import dask

    return dask.config.get("distributed.worker.profile.enabled")


def test_the_local_cluster_runs_no_profiler(cluster):
    """Without a dashboard nobody reads its samples (it made runs 3-4% slower)."""
    assert set(cluster.run(_profiler_enabled).values()) == {False}


def test_local_cluster_matches_one_core(cluster, corpus, serial, inventory, monkeypatch):
    loaded = []
    original = loganalyzer.logsets.SpilledSessions.load
    monkeypatch.setattr(
        loganalyzer.logsets.SpilledSessions, "load", lambda self: loaded.append(1) or original(self)
    )
    for name, path in (("incident", INCIDENT), ("corpus", corpus)):
        df = loganalyzer.read_sessions(path, scheduler=cluster)
        _same(df, serial[name])
        _same(_findings(df, inventory), _findings(serial[name], inventory))
    assert loaded  # its workers are on this machine: tables came back through files


def test_ingest_on_a_local_cluster_matches_one_core(cluster, corpus, serial, tmp_path):
    result = loganalyzer.ingest(corpus, tmp_path / "store", scheduler=cluster)
    assert result.files_new == len(list(corpus.rglob("*.LOG")))
    _same(loganalyzer.open_store(tmp_path / "store").sessions(), serial["corpus"])


class _FakeClient:
    def __init__(self, *addresses):
        self.addresses = addresses

    def scheduler_info(self):
        return {"workers": {address: {} for address in self.addresses}}


@pytest.mark.parametrize(
    ("scheduler", "here"),
    [
        (None, True),
        ("local", True),
        ("tcp://127.0.0.1:8786", True),
        ("tcp://localhost:8786", True),
        ("tcp://[::1]:8786", True),
        ("tcp://192.0.2.10:8786", False),
        (_FakeClient("tcp://127.0.0.1:40001", "tcp://127.0.0.1:40002"), True),
        (_FakeClient("tcp://127.0.0.1:40001", "tcp://192.0.2.7:40002"), False),
        (_FakeClient(), False),
        (object(), False),
    ],
)
def test_results_come_through_files_only_when_every_worker_is_here(scheduler, here):
    assert loganalyzer.parallel.on_this_machine(scheduler) is here


def test_cli_scheduler_address(cluster, serial, tmp_path):
    address = cluster.scheduler.address
    out = tmp_path / "sessions.parquet"
    result = CliRunner().invoke(
        app,
        ["sessions", str(INCIDENT), "--scheduler", address, "-f", "parquet", "-o", str(out), "-q"],
    )
    assert result.exit_code == 0, result.output
    _same(pd.read_parquet(out, dtype_backend="pyarrow"), serial["incident"])


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(loganalyzer.parallel, "CONNECT_TIMEOUT_S", 2)
    result = CliRunner().invoke(
        app, ["sessions", str(INCIDENT), "--scheduler", "tcp://127.0.0.1:9", "-q"]
    )
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in result.output


@pytest.mark.parametrize(
    ("args", "jobs"),
    [(["sessions", "x", "--jobs", "2"], 2), (["report", "--jobs=1"], 1), (["report"], None),
     (["sessions", "--jobs", "zero"], None)],
)  # fmt: skip
def test_jobs_bound_the_parsing_threads(args, jobs):
    assert jobs_from_args(args) == jobs


@pytest.mark.parametrize(
    ("args", "preset", "threads", "allocator"),
    [(["sessions", "x"], None, "1", True), (["sessions", "--jobs", "1"], None, "1", False),
     (["report", "--jobs=2"], "4", "4", True),
     (["report", "--scheduler", "local"], None, None, True)],
)  # fmt: skip
def test_the_command_runs_polars_on_one_thread_per_process(
    args, preset, threads, allocator, monkeypatch
):
    monkeypatch.delenv(MAIN_ALLOCATOR_ENV, raising=False)
    monkeypatch.delenv(loganalyzer.parallel.SCHEDULER_ENV, raising=False)
    if preset is None:
        monkeypatch.delenv("POLARS_MAX_THREADS", raising=False)
    else:
        monkeypatch.setenv("POLARS_MAX_THREADS", preset)  # an explicit setting wins
    prepare_environment(args)
    assert os.environ.get("POLARS_MAX_THREADS") == threads  # None: Polars' own default
    assert (MAIN_ALLOCATOR_ENV in os.environ) == allocator


@pytest.fixture
def copied_corpus(corpus, tmp_path) -> Path:
    target = tmp_path / "logs"
    shutil.copytree(corpus, target)
    return target


def test_ingest_in_parallel_matches_one_core(copied_corpus, tmp_path, main_works, monkeypatch):
    """A first run while each log set's files are half written (the newest one cut mid-way),
    a second one when they are all there: read in parallel, the same as one full read."""
    monkeypatch.setattr(loganalyzer.store, "PARALLEL_MIN_BYTES", 0)
    later = {}
    for folder in sorted({path.parent for path in copied_corpus.rglob("*.LOG")}):
        files = sorted(folder.glob("*.LOG"))
        half = len(files) // 2
        for path in files[half + 1 :]:
            later[path] = path.read_bytes()
            path.unlink()
        data = later[files[half]] = files[half].read_bytes()
        files[half].write_bytes(data[: data.rfind(b"\n", 0, len(data) // 2) + 1])
    first = loganalyzer.ingest(copied_corpus, tmp_path / "store", jobs=2)
    for path, data in later.items():
        path.write_bytes(data)
    second = loganalyzer.ingest(copied_corpus, tmp_path / "store", jobs=2)
    assert (first.files_new, second.files_grown, second.files_new) == (8, 4, 2)
    _same(loganalyzer.open_store(tmp_path / "store").sessions(), loganalyzer.read_sessions(
        copied_corpus, jobs=1
    ))  # fmt: skip


def test_ingest_reports_a_worker_that_dies(copied_corpus, tmp_path, main_works, monkeypatch):
    monkeypatch.setattr(loganalyzer.store, "PARALLEL_MIN_BYTES", 0)
    files = sorted(copied_corpus.rglob("*.LOG"))
    victim = files[0]  # the first task always goes to a worker
    monkeypatch.setenv(CRASH_FOR_TESTS, str(victim.relative_to(copied_corpus)))
    result = loganalyzer.ingest(copied_corpus, tmp_path / "store", jobs=2)
    skipped = result.stats.as_dict()["skipped"]
    assert skipped == [{"file": str(victim), "reason": "the worker process died while reading it"}]
    assert result.files_new == len(files)
    victim.unlink()
    assert result.sessions == len(loganalyzer.read_sessions(copied_corpus, jobs=1))


class _PoolThatBreaksOnItsSecondTask:
    """A stand-in for ProcessPoolExecutor: runs work at once; the second submission (across
    all pools) finds the pool broken, as when a worker dies between two submissions."""

    submissions = 0

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, work, task):
        type(self).submissions += 1
        if type(self).submissions == 2:
            raise BrokenProcessPool("a worker died")
        future = Future()
        future.set_result(work(task))
        return future

    def shutdown(self, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def test_a_task_whose_submission_finds_the_pool_broken_still_runs(monkeypatch):
    monkeypatch.setattr(loganalyzer.parallel, "ProcessPoolExecutor", _PoolThatBreaksOnItsSecondTask)
    monkeypatch.setattr(loganalyzer.parallel, "main_takes_part", lambda: False)
    results = list(loganalyzer.parallel.run_inputs([1, 2, 3], str, jobs=1, parallel=True))
    assert results == [(1, "1"), (2, "2"), (3, "3")]  # each task once, in order
