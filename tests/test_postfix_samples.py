"""Golden sessions for every sample in sample_logs/postfix, checked against the catalogue too.

sample_logs/README.md ("Postfix samples") states, independently of the code, the outcome and
fallback of every sample session by the file and line where it starts; the goldens pin every
other column. The year and zone of the year-less samples are pinned (2026, Europe/Berlin).
Regenerate the goldens with ``pytest tests/test_postfix_samples.py --update-golden`` and review
the diff.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import loganalyzer
from tests.conftest import GOLDEN, SAMPLE_LOGS, check_golden
from tests.helpers import records

POSTFIX = SAMPLE_LOGS / "postfix"
PINNED = {"syslog_year": 2026, "syslog_tz": "Europe/Berlin"}
SAMPLES = sorted(
    p for p in POSTFIX.iterdir() if (p.is_dir() and p.name != "incident") or p.suffix == ".log"
)


def read(path: Path, **options):
    return loganalyzer.read_sessions(path, **{**PINNED, **options})


def _catalogue() -> dict[tuple[str, int], tuple[str, bool]]:
    """(file name, line) -> (outcome, fallback) from the Postfix catalogue in the README."""
    text = (SAMPLE_LOGS / "README.md").read_text("utf-8")
    section = text[text.index("## Postfix samples") :]
    expected = {}
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first_cell = row.split("|")[1].strip().strip("`")
        for file, line, outcome, fallback in re.findall(
            r"`(?:([\w.-]+):)?L(\d+)`: (\w+)( \(fallback\))?", row
        ):
            name = file or Path(first_cell).name
            expected[(name, int(line))] = (outcome, bool(fallback))
    return expected


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_golden_sessions(sample: Path, update_golden):
    df = read(sample)
    stats = df.attrs["read_stats"]
    assert stats["malformed"] == 0 and stats["skipped"] == []
    assert set(df["source"]) == {"postfix"}
    golden = GOLDEN / "postfix" / "samples" / f"{sample.stem}.sessions.jsonl"
    check_golden(records(df, SAMPLE_LOGS), golden, update_golden)


def test_every_sample_session_matches_the_catalogue():
    df = read(POSTFIX)
    df = df[~df["file"].str.contains("incident", regex=False)]
    got = {(Path(r.file).name, r.line): (r.outcome, bool(r.fallback)) for r in df.itertuples()}
    assert got == _catalogue()


def test_whole_folder_equals_the_files_read_one_by_one():
    whole = records(read(POSTFIX), SAMPLE_LOGS)
    whole = [r for r in whole if not r["file"].startswith("postfix/incident/")]
    parts = [r for sample in SAMPLES for r in records(read(sample), SAMPLE_LOGS)]
    key = lambda r: (r["start_utc"] or "", r["server"] or "", r["session_id"])  # noqa: E731
    assert sorted(whole, key=key) == sorted(parts, key=key)


def test_rotated_files_are_read_oldest_first_and_a_session_crosses_them():
    df = read(POSTFIX / "rotated")
    assert [Path(f).name for f in df["file"]] == [
        "mail.log.2.gz", "mail.log.1", "mail.log.1", "mail.log",
    ]  # fmt: skip
    crossing = df.iloc[2]
    assert (crossing["tls_version"], crossing["messages"], crossing["delivered"]) == (
        "TLS1.3",
        1,
        1,
    )
    assert str(crossing["start_utc"]) == "2026-11-26 09:00:00+00:00"
    assert str(crossing["end_utc"]) == "2026-11-26 09:00:02+00:00"


def test_rotated_files_given_in_any_order_give_the_same_table(tmp_path):
    expected = records(read(POSTFIX / "rotated"), drop=("file",))
    for name in ("mail.log", "mail.log.1", "mail.log.2.gz"):
        shutil.copy(POSTFIX / "rotated" / name, tmp_path / name)
    files = [tmp_path / "mail.log", tmp_path / "mail.log.2.gz", tmp_path / "mail.log.1"]
    assert records(read(files), drop=("file",)) == expected


def test_postfix_and_exchange_logs_in_one_folder(tmp_path):
    exchange = SAMPLE_LOGS / "exchange" / "recv-oneline-cert-tls12-success.LOG"
    postfix = POSTFIX / "send-plaintext-fallback-after-backoff.log"
    shutil.copy(exchange, tmp_path / exchange.name)
    shutil.copy(postfix, tmp_path / postfix.name)
    both = read(tmp_path)
    assert both["source"].value_counts().to_dict() == {"exchange": 2, "postfix": 3}
    alone = records(read(exchange), drop=("file",)) + records(read(postfix), drop=("file",))
    key = lambda r: (r["start_utc"], r["session_id"])  # noqa: E731
    assert sorted(records(both, drop=("file",)), key=key) == sorted(alone, key=key)
    assert list(both.columns) == list(loganalyzer.SESSION_COLUMNS)
