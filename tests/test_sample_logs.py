"""Golden sessions for every file in sample_logs/exchange, checked against the catalogue too.

sample_logs/README.md states, independently of the code, the expected outcome and fallback of
every sample session; the goldens pin every other column. Regenerate the goldens with
``pytest tests/test_sample_logs.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import loganalyzer
from tests.conftest import GOLDEN, SAMPLE_LOGS, check_golden
from tests.helpers import records

EXCHANGE = SAMPLE_LOGS / "exchange"
SAMPLES = sorted(p for p in EXCHANGE.iterdir() if p.is_dir() or p.suffix.lower() == ".log")


def _catalogue() -> dict[str, tuple[str, bool]]:
    text = (SAMPLE_LOGS / "README.md").read_text("utf-8")
    expected = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            for sid, outcome, fallback in re.findall(
                r"`([0-9A-F]{16})`: (\w+)( \(fallback\))?", line
            ):
                expected[sid] = (outcome, bool(fallback))
    return expected


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_golden_sessions(sample: Path, update_golden):
    df = loganalyzer.read_sessions(sample)
    assert df.attrs["read_stats"]["malformed"] == 0
    golden = GOLDEN / "samples" / f"{sample.stem}.sessions.jsonl"
    check_golden(records(df, SAMPLE_LOGS), golden, update_golden)


def test_whole_folder_matches_the_catalogue():
    df = loganalyzer.read_sessions(SAMPLE_LOGS / "exchange")
    got = {r.session_id: (r.outcome, bool(r.fallback)) for r in df.itertuples()}
    assert got == _catalogue()
    # (sample_logs/inventory and sample_logs/incident lie beside exchange/, not inside it)
    assert df.attrs["read_stats"]["skipped"] == []


def test_whole_folder_equals_the_files_read_one_by_one():
    whole = records(loganalyzer.read_sessions(SAMPLE_LOGS / "exchange"), SAMPLE_LOGS)
    parts = [
        r for sample in SAMPLES for r in records(loganalyzer.read_sessions(sample), SAMPLE_LOGS)
    ]
    key = lambda r: (r["start_utc"], r["server"] or "", r["session_id"])  # noqa: E731
    assert sorted(whole, key=key) == sorted(parts, key=key)
