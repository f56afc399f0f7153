"""Shared test setup: a non-UTC time zone, the hypothesis CI profile, fixture paths, goldens.

Golden files live in tests/golden/. Regenerate them after an intended change with
``pytest --update-golden`` and review the diff before committing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Run under a zone far from UTC (and with DST) so nothing can silently depend on local time.
os.environ["TZ"] = os.environ.get("LOGANALYZER_TEST_TZ", "Pacific/Auckland")
time.tzset()

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
SAMPLE_LOGS = ROOT / "sample_logs"
GOLDEN = Path(__file__).resolve().parent / "golden"
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite golden files from current output"
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def exchange_fixtures() -> Path:
    """The shared real-log excerpts; tests using them skip with a reason when absent."""
    folder = SHARED_FIXTURES / "exchange"
    if not folder.is_dir():
        pytest.skip(f"shared fixtures not found at {folder} (they live beside the project)")
    return folder


def check_golden(records: list[dict], golden: Path, update: bool) -> None:
    """Compare JSON-able records with a golden JSONL file (or rewrite it with --update-golden)."""
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)
    if update or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
        if not update:
            pytest.fail(f"golden file {golden} was missing and has been written; review it")
        return
    expected = [json.loads(line) for line in golden.read_text(encoding="utf-8").splitlines()]
    assert records == expected, f"output differs from {golden} (pytest --update-golden)"


def check_golden_text(text: str, golden: Path, update: bool) -> None:
    """Compare text with a golden file (or rewrite it with --update-golden)."""
    if update or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8", newline="")
        if not update:
            pytest.fail(f"golden file {golden} was missing and has been written; review it")
        return
    expected = golden.read_text(encoding="utf-8")
    assert text == expected, f"output differs from {golden} (pytest --update-golden)"
