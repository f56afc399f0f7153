"""The store: incremental ingest equals one full read, atomic publication, lock, pruning."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import loganalyzer
from loganalyzer import store as store_module
from loganalyzer.cli import app
from loganalyzer.sessions import read_sessions
from loganalyzer.store import (
    REREAD_MISSING,
    StoreError,
    StoreLockedError,
    _locked,
    ingest,
    open_store,
    parse_time,
    read_store,
)
from tests.conftest import SAMPLE_LOGS
from tests.helpers import load_corpus_generator, row, write_log

INCIDENT = SAMPLE_LOGS / "incident"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A copy of the sample incident's protocol logs (8 files, two servers, two days)."""
    target = tmp_path / "logs"
    for source in sorted(INCIDENT.rglob("*.LOG")):
        dest = target / source.relative_to(INCIDENT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    return target


def _assert_same(store: Path, reference: pd.DataFrame) -> None:
    got = open_store(store).sessions()
    assert len(got) == len(reference)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), reference.reset_index(drop=True))


def test_one_ingest_equals_read_sessions(logs, tmp_path):
    result = ingest(logs, tmp_path / "store")
    assert (result.files_new, result.logsets_updated, result.sessions) == (8, 4, 367)
    _assert_same(tmp_path / "store", read_sessions(logs))


def test_nothing_new_reads_nothing(logs, tmp_path):
    (logs / "notes.txt").write_text("not a log\n", encoding="utf-8")  # skipped every time
    ingest(logs, tmp_path / "store")
    manifest = (tmp_path / "store" / "manifest.json").read_bytes()
    again = ingest(logs, tmp_path / "store")
    assert (again.files_unchanged, again.rows_read, again.logsets_updated) == (8, 0, 0)
    assert (tmp_path / "store" / "manifest.json").read_bytes() == manifest


@pytest.mark.parametrize("cuts", [(0.5,), (0.3, 0.6, 0.9), (0.25, 0.5)], ids=str)
@pytest.mark.parametrize("mid_line", [False, True], ids=["at-line-end", "mid-line"])
def test_appending_between_runs_equals_one_full_read(logs, tmp_path, cuts, mid_line):
    """Files grow between runs (sessions open at each cut) -> the same table, file and line too."""
    reference = read_sessions(logs)
    full = {p: p.read_bytes() for p in sorted(logs.rglob("*.LOG"))}
    for fraction in cuts:
        for path, data in full.items():
            cut = int(len(data) * fraction)
            if not mid_line:
                cut = data.rfind(b"\n", 0, cut) + 1
            path.write_bytes(data[:cut])
        ingest(logs, tmp_path / "store")
    for path, data in full.items():
        path.write_bytes(data)
    result = ingest(logs, tmp_path / "store")
    assert result.files_grown == 8 and result.files_new == 0
    _assert_same(tmp_path / "store", reference)


@pytest.fixture(scope="module")
def crossing_logs(tmp_path_factory) -> Path:
    """Two servers' logs whose sessions run on from one file into the next."""
    folder = tmp_path_factory.mktemp("crossing")
    load_corpus_generator().generate(folder, 600_000, seed=7, servers=2, file_size=50_000)
    return folder


def test_an_older_file_that_grows_or_arrives_late_reads_its_log_set_again(crossing_logs, tmp_path):
    """Not how Exchange writes (only the newest file grows), but how collected copies can
    arrive: an older file grows, or shows up, after a later one of its log set was read.
    Its rows come before rows already merged, so the log set is read again from the start."""
    logs = tmp_path / "logs"
    shutil.copytree(crossing_logs, logs)
    full = {path: path.read_bytes() for path in sorted(logs.rglob("*.LOG"))}
    for path, data in full.items():  # every file half written
        path.write_bytes(data[: data.rfind(b"\n", 0, len(data) // 2) + 1])
    ingest(logs, tmp_path / "store")
    first_files = sorted(logs.rglob("*.LOG"))
    late = first_files[0]  # the first file of its log set: gone for the next run
    late.unlink()
    for path, data in full.items():
        if path != late:
            path.write_bytes(data)
    grown = ingest(logs, tmp_path / "store")
    assert grown.logsets_reread == 3  # the log set whose first file is away cannot be
    assert [(s.name, s.reason) for s in grown.stats.skipped] == [(str(late), REREAD_MISSING)]
    late.write_bytes(full[late])  # back, and complete: its log set is read again
    again = ingest(logs, tmp_path / "store")
    assert (again.files_grown, again.logsets_reread) == (1, 1)
    _assert_same(tmp_path / "store", read_sessions(logs))


@settings(max_examples=12)
@given(runs=st.lists(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2), min_size=1, max_size=3))
def test_any_sequence_of_growth_equals_one_full_read(tmp_path_factory, runs):
    """Both send logs of one server cut anywhere (mid-line too), ingested after each growth."""
    tmp = tmp_path_factory.mktemp("grow")
    folder = tmp / "logs"
    sources = sorted((INCIDENT / "EX02").rglob("SEND*.LOG"))
    targets = [folder / "EX02" / s.relative_to(INCIDENT / "EX02") for s in sources]
    full = [s.read_bytes() for s in sources]
    for target, data in zip(targets, full, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    reference = read_sessions(folder)
    sizes = [0, 0]
    for fractions in runs:
        for i, (target, data) in enumerate(zip(targets, full, strict=True)):
            sizes[i] = max(sizes[i], int(len(data) * fractions[i]))  # logs only grow
            target.write_bytes(data[: sizes[i]])
        ingest(folder, tmp / "store")
    for target, data in zip(targets, full, strict=True):
        target.write_bytes(data)
    ingest(folder, tmp / "store")
    _assert_same(tmp / "store", reference)


def test_added_and_deleted_files_keep_every_session(logs, tmp_path):
    """Run 1 sees the first day; one file is deleted, the second day added: nothing is lost."""
    reference = read_sessions(logs)
    hidden = tmp_path / "hidden"
    second_day = sorted(logs.rglob("*2026112700-1.LOG"))
    for path in second_day:
        target = hidden / path.relative_to(logs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    ingest(logs, tmp_path / "store")
    deleted = sorted(logs.rglob("RECV2026112620-1.LOG"))[0]
    deleted.unlink()
    for path in second_day:
        shutil.move(hidden / path.relative_to(logs), path)
    result = ingest(logs, tmp_path / "store")
    assert (result.files_new, result.files_gone, result.files_unchanged) == (4, 1, 3)
    _assert_same(tmp_path / "store", reference)
    files = open_store(tmp_path / "store").files
    assert len(files) == 8 and files["rows"].sum() == 14377


def test_a_replaced_file_is_read_as_a_new_one(tmp_path):
    """Same name, other content (the first block differs): the old sessions stay."""
    logs = tmp_path / "logs"
    path = logs / "RECV2026112606-1.LOG"
    first = [
        row(
            "06:00:00.000",
            "EX01\\Default",
            "08DD000000000001",
            0,
            "10.0.0.1:25",
            "192.0.2.1:4000",
            "+",
        )
    ]
    second = [
        row(
            "07:00:00.000",
            "EX01\\Default",
            "08DD000000000002",
            0,
            "10.0.0.1:25",
            "192.0.2.2:4000",
            "+",
        )
    ]
    write_log(path, first)
    ingest(logs, tmp_path / "store")
    write_log(path, second)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = ingest(logs, tmp_path / "store")
    assert (result.files_new, result.files_grown) == (1, 0)
    got = open_store(tmp_path / "store").sessions()
    assert got["session_id"].tolist() == ["08DD000000000001", "08DD000000000002"]


def test_a_file_that_shrank_keeps_what_was_read(logs, tmp_path):
    reference = read_sessions(logs)
    ingest(logs, tmp_path / "store")
    path = sorted(logs.rglob("*.LOG"))[0]
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n", 0, len(data) // 2) + 1])
    result = ingest(logs, tmp_path / "store")
    assert result.files_new == 0 and result.rows_read == 0
    assert [s.reason for s in result.stats.skipped] == [
        "shrank since the last run (same start): kept what was read"
    ]
    _assert_same(tmp_path / "store", reference)


def test_gzip_files_are_read_once_and_a_regrown_gzip_from_where_it_stopped(tmp_path):
    logs = tmp_path / "logs"
    rows = [
        row(f"06:00:0{i}.000", "EX01\\Default", f"08DD00000000000{i}", 0, "10.0.0.1:25",
            f"192.0.2.{i}:4000", "+")
        for i in range(1, 4)
    ]  # fmt: skip
    write_log(logs / "RECV2026112606-1.LOG", rows[:2], gz=True)
    ingest(logs, tmp_path / "store")
    assert ingest(logs, tmp_path / "store").rows_read == 0
    path = write_log(logs / "RECV2026112606-1.LOG", rows, gz=True)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = ingest(logs, tmp_path / "store")
    assert (again.files_grown, again.rows_read) == (1, 1)
    _assert_same(tmp_path / "store", read_sessions(logs))


def test_moved_and_gzipped_files_are_not_read_twice(logs, tmp_path):
    reference = read_sessions(logs)
    ingest(logs, tmp_path / "store")
    archive = logs / "archive"
    archive.mkdir()
    first, second, third = sorted(logs.rglob("*2026112620-1.LOG"))[:3]
    shutil.move(first, archive / "EX01-RECV2026112620-1.LOG")  # moved to an archive folder
    second.with_name(second.name + ".gz").write_bytes(gzip.compress(second.read_bytes()))
    second.unlink()  # gzipped in place
    data = third.read_bytes()
    shutil.move(third, archive / third.name)  # moved, and it had grown meanwhile
    (archive / third.name).write_bytes(data + data.splitlines(keepends=True)[-1])
    result = ingest(logs, tmp_path / "store")
    assert (result.files_moved, result.files_new, result.files_gone) == (3, 0, 0)
    assert result.rows_read == 1
    got = open_store(tmp_path / "store").sessions()
    assert len(got) == len(reference)  # nothing twice
    assert (got["file"] == reference["file"]).all()  # names as first read


def test_a_crash_mid_write_leaves_the_previous_state(logs, tmp_path, monkeypatch):
    store = tmp_path / "store"
    reference = read_sessions(logs)
    full = {p: p.read_bytes() for p in sorted(logs.rglob("*.LOG"))}
    for path, data in full.items():
        path.write_bytes(data[: data.rfind(b"\n", 0, len(data) // 2) + 1])
    ingest(logs, store)
    before = open_store(store).sessions()
    manifest = (store / "manifest.json").read_bytes()
    for path, data in full.items():
        path.write_bytes(data)

    real = store_module._write_sessions
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # two log sets written, the third interrupted (Ctrl-C)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "_write_sessions", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(logs, store)
    monkeypatch.undo()
    assert (store / "manifest.json").read_bytes() == manifest
    pd.testing.assert_frame_equal(open_store(store).sessions(), before)
    ingest(logs, store)  # the next run completes, and removes what the crash left
    _assert_same(store, reference)
    listed = {
        f["path"]
        for s in json.loads((store / "manifest.json").read_text())["logsets"].values()
        for f in s["sessions"]
    }
    on_disk = {p.relative_to(store).as_posix() for p in (store / "sessions").rglob("*.parquet")}
    assert on_disk == listed


def test_a_second_writer_stops_with_a_clear_message(logs, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    with _locked(store, 0), pytest.raises(StoreLockedError, match="another run is writing"):
        ingest(logs, store)
    with _locked(store, 0):
        result = CliRunner().invoke(app, ["ingest", str(logs), "--store", str(store)])
    assert result.exit_code == 2
    assert "another run is writing to this store (pid" in result.output
    assert "Traceback" not in result.output


def test_a_second_writer_can_wait(logs, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    held = threading.Event()

    def hold():
        with _locked(store, 0):
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    result = ingest(logs, store, wait=10)
    thread.join()
    assert result.files_new == 8


def test_a_corrupt_manifest_is_named(logs, tmp_path):
    store = tmp_path / "store"
    ingest(logs, store)
    (store / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreError, match=r"manifest\.json: the store's manifest is unreadable"):
        open_store(store)
    result = CliRunner().invoke(app, ["sessions", "--store", str(store)])
    assert result.exit_code == 2 and "manifest is unreadable" in result.output
    with pytest.raises(StoreError, match="not a loganalyzer store"):
        open_store(tmp_path / "logs")


# --- reading: filters, relative times, partition pruning ---------------------------------------


def _day_logs(folder: Path, days: int = 30) -> None:
    """One receive session at noon on each of ``days`` days (and one at 21:00 on day 14)."""
    rows = []
    start = datetime(2026, 10, 1, tzinfo=UTC)
    times = [start + timedelta(days=d, hours=12) for d in range(days)]
    if days > 13:
        times.append(start + timedelta(days=13, hours=21))
    for i, when in enumerate(sorted(times)):
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        end = (when + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        sid = f"08DD{i:012X}"
        peer = f"192.0.2.{i + 1}:4000"
        rows += [
            row(stamp, "EX01\\Default EX01", sid, 0, "10.0.0.1:25", peer, "+"),
            row(end, "EX01\\Default EX01", sid, 1, "10.0.0.1:25", peer, "-", "", "Remote"),
        ]
    write_log(folder / "RECV2026100100-1.LOG", rows)


def test_one_day_out_of_30_reads_only_its_partitions_and_the_margin(tmp_path):
    _day_logs(tmp_path / "logs")
    ingest(tmp_path / "logs", tmp_path / "store")
    days = {p.name for p in (tmp_path / "store" / "sessions").iterdir()}
    assert len(days) == 30
    since = datetime(2026, 10, 15, tzinfo=UTC)
    until = since + timedelta(days=1) - timedelta(microseconds=1)
    df = read_store(tmp_path / "store", since, until)
    assert [p.split("/")[1] for p in df.attrs["partitions_read"]] == ["day=2026-10-15"]
    assert len(df) == 1
    with_margin = read_store(tmp_path / "store", since, until, margin=timedelta(hours=6))
    read = [p.split("/")[1] for p in with_margin.attrs["partitions_read"]]
    assert read == ["day=2026-10-14", "day=2026-10-15"]  # the 21:00 session is in the margin
    assert with_margin["start_utc"].dt.hour.tolist() == [21, 12]


def test_filters_and_relative_times(tmp_path):
    _day_logs(tmp_path / "logs", days=3)
    ingest(tmp_path / "logs", tmp_path / "store")
    store = loganalyzer.open_store(tmp_path / "store")
    now = datetime(2026, 10, 3, 13, tzinfo=UTC)
    assert len(store.sessions(since="24h", now=now)) == 1
    assert len(store.sessions(since="2d", now=now)) == 2
    assert len(store.sessions(peer="192.0.2.2")) == 1
    assert len(store.sessions(server="EX01", connector="Default EX01")) == 3
    assert len(store.sessions(server="EX02")) == 0
    assert store.sessions(server="EX02").attrs["partitions_read"] == []
    assert isinstance(store.sessions()["start_utc"].dtype, pd.ArrowDtype)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", datetime(2026, 11, 26, 12, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 20, 12, tzinfo=UTC)),
        ("90m", datetime(2026, 11, 27, 10, 30, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 13, 12, tzinfo=UTC)),
        ("2026-11-27T06:00Z", datetime(2026, 11, 27, 6, tzinfo=UTC)),
        ("2026-11-27T06:00", datetime(2026, 11, 27, 6, tzinfo=UTC)),  # naive = UTC
        ("2026-11-27T08:00+02:00", datetime(2026, 11, 27, 6, tzinfo=UTC)),
    ],
)
def test_relative_and_absolute_times(text, expected):
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert parse_time(text, now) == expected
    from loganalyzer.cli import parse_time as cli_parse_time

    assert cli_parse_time(text, now) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "-3d", "7 days"])
def test_times_that_are_not_times(text):
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(text)


def test_bad_input_and_bad_store_exit_2_with_the_name(logs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["ingest", str(empty), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "no input given" in result.output
    result = CliRunner().invoke(app, ["ingest", str(logs), "--store", str(logs)])
    assert result.exit_code == 2
    assert f"{logs}: not a loganalyzer store (no manifest.json), and not empty" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(app, ["ingest", str(logs), "--store", str(tmp_path / "s"), "-q"])
    assert ok.exit_code == 0
    assert "8 new, 0 grown, 0 unchanged, 0 gone, 0 moved files; 14,377 rows read; 367 sessions" in (
        ok.output
    )


_KILLED_RUN = """
import os, signal, sys
from loganalyzer import store
real = store._write_sessions
calls = []
def killed(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all, the lock held
    return real(*args, **kwargs)
store._write_sessions = killed
store.ingest(sys.argv[1], sys.argv[2])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_run_leaves_the_previous_state_and_frees_the_lock(logs, tmp_path):
    store = tmp_path / "store"
    reference = read_sessions(logs)
    full = {p: p.read_bytes() for p in sorted(logs.rglob("*.LOG"))}
    for path, data in full.items():
        path.write_bytes(data[: len(data) // 3])
    ingest(logs, store)
    before = open_store(store).sessions()
    for path, data in full.items():
        path.write_bytes(data)
    run = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(logs), str(store)], timeout=120)
    assert run.returncode == -signal.SIGKILL
    pd.testing.assert_frame_equal(open_store(store).sessions(), before)
    assert ingest(logs, store, wait=0).files_grown == 8  # the lock died with the process
    _assert_same(store, reference)
