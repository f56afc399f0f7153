"""The same logs give the same session table however they are handed over.

A small generated corpus (benchmarks/generate_corpus.py) with many sessions crossing file
boundaries is read as a folder, as a shuffled list of files, gzipped, zipped, in small chunks
and in worker processes: the tables must be identical apart from ``file`` and ``line``.
"""

from __future__ import annotations

import gzip
import random
import shutil
import zipfile
from pathlib import Path

import pytest

import loganalyzer
import loganalyzer.sessions
from tests.helpers import load_corpus_generator

generate_corpus = load_corpus_generator()


def _table(df):
    return df.drop(columns=["file", "line"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    generate_corpus.generate(folder, 1_500_000, seed=3, servers=2, file_size=150_000)
    return folder


@pytest.fixture(scope="module")
def expected(corpus):
    df = loganalyzer.read_sessions(corpus, jobs=1)
    assert len(df) > 250 and df.attrs["read_stats"]["malformed"] == 0
    return _table(df)


def _files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file())


def test_sessions_cross_files_in_this_corpus(corpus, expected):
    events = loganalyzer.read_events(corpus)
    files_per_session = events.groupby("session_id")["file"].nunique()
    assert (files_per_session > 1).sum() > 40


def test_files_listed_in_any_order(corpus, expected):
    files = [str(p) for p in _files(corpus)]
    random.Random(7).shuffle(files)
    assert _table(loganalyzer.read_sessions(files, jobs=1)).equals(expected)


def test_gzipped_and_zipped(corpus, expected, tmp_path):
    gz = tmp_path / "gz"
    for path in _files(corpus):
        target = gz / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_name(target.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    assert _table(loganalyzer.read_sessions(gz, jobs=1)).equals(expected)
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files(corpus):
            archive.write(path, path.relative_to(corpus).as_posix())
    assert _table(loganalyzer.read_sessions(bundle, jobs=1)).equals(expected)


def test_small_chunks_inside_files(corpus, expected):
    df = loganalyzer.read_sessions(corpus, jobs=1, chunk_bytes=20_000)
    assert _table(df).equals(expected)


def test_worker_processes(corpus, expected, monkeypatch):
    monkeypatch.setattr(loganalyzer.sessions, "PARALLEL_MIN_BYTES", 0)
    df = loganalyzer.read_sessions(corpus, jobs=2)
    assert _table(df).equals(expected)


def test_copied_folder_with_other_name_is_the_same(corpus, expected, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(corpus, copy)
    assert _table(loganalyzer.read_sessions(copy, jobs=1)).equals(expected)
