"""Golden sessions and events for every real published excerpt in ../shared/fixtures/exchange/.

Each fixture is also read after conversion to CRLF + BOM (as Exchange writes files), gzipped,
and as a zip member: the session table must not change (apart from ``file``).
Regenerate the goldens with ``pytest tests/test_exchange_fixtures.py --update-golden``.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

import loganalyzer
from loganalyzer.output import iter_records
from tests.conftest import GOLDEN, SHARED_FIXTURES, check_golden, exchange_fixtures
from tests.helpers import records

FIXTURE_NAMES = sorted(p.name for p in (SHARED_FIXTURES / "exchange").glob("*.log"))


def _golden(name: str, suffix: str) -> Path:
    return GOLDEN / "fixtures" / f"{Path(name).stem}.{suffix}.jsonl"


@pytest.fixture(params=FIXTURE_NAMES or ["(none)"])
def fixture_log(request) -> Path:
    folder = exchange_fixtures()
    if request.param == "(none)":
        pytest.skip("no .log fixtures in the shared folder")
    return folder / request.param


def test_golden_sessions(fixture_log, update_golden):
    df = loganalyzer.read_sessions(fixture_log)
    check_golden(
        records(df, fixture_log.parent), _golden(fixture_log.name, "sessions"), update_golden
    )


def test_golden_events(fixture_log, update_golden):
    df = loganalyzer.read_events(fixture_log)
    rows = [
        {k: r[k] for k in ("line", "session_id", "sequence_number", "event", "kind")}
        for r in iter_records(df)
    ]
    check_golden(rows, _golden(fixture_log.name, "events"), update_golden)


def _crlf_bom(data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("variant", ["crlf-bom", "gzip", "zip"])
def test_variants_give_the_same_sessions(fixture_log, variant, tmp_path):
    expected = records(loganalyzer.read_sessions(fixture_log), drop=("file",))
    data = _crlf_bom(fixture_log.read_bytes())
    if variant == "crlf-bom":
        target = tmp_path / fixture_log.name
        target.write_bytes(data)
    elif variant == "gzip":
        target = tmp_path / (fixture_log.name + ".gz")
        target.write_bytes(gzip.compress(data, mtime=0))
    else:
        target = tmp_path / "bundle.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"collected/{fixture_log.name}", data)
    df = loganalyzer.read_sessions(target)
    assert records(df, drop=("file",)) == expected
    assert df.attrs["read_stats"]["malformed"] == 0
