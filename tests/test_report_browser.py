"""The HTML report in a real headless browser (Debian's ``chromium``; .ci/run installs it).

Locally the test skips when no browser is installed; under ``CI=true`` a missing browser fails.
"""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from loganalyzer.cli import app
from tests.browser import Browser, find_browser
from tests.conftest import ROOT

IMAGES = """JSON.stringify([...document.images].map(i => ({
    id: i.id, complete: i.complete, natural: i.naturalWidth * i.naturalHeight,
    shown: i.getBoundingClientRect().width * i.getBoundingClientRect().height})))"""


@pytest.fixture(scope="module")
def browser():
    executable = find_browser()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium on the CI machine: .ci/run must install it")
        pytest.skip("no headless browser installed (apt-get install chromium)")
    with Browser(executable) as running:
        yield running


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        result = CliRunner().invoke(app, ["report", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return (out / "report.html").as_uri()


def test_report_page_renders_without_errors(browser, page):
    session = browser.open(page)
    assert browser.errors() == []
    images = json.loads(browser.evaluate(session, IMAGES))
    assert [i["id"] for i in images] == [
        "chart-failures_over_time", "chart-tls_over_time", "chart-certificate_timeline",
        "chart-tls_versions",
    ]  # fmt: skip
    for image in images:
        assert image["complete"] and image["natural"] > 0 and image["shown"] > 0, image
    halts = browser.evaluate(session, "document.querySelector('#halts').innerText")
    assert "send connector 'Outbound to Office 365'" in halts
    assert "Most likely cause: the certificate presented (thumbprint BB7B03FE" in halts
    assert "expired at 2026-11-27T03:00:00Z" in halts
    verdict = browser.evaluate(session, "document.querySelector('#verdict').innerText")
    assert verdict.startswith("MAIL FLOW HALTED")


def test_the_checks_can_fail(browser, tmp_path):
    """A broken image is reported: the checks above are not vacuous."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><img id="x" src="missing.png"><script>console.error("boom")</script>',
        encoding="utf-8",
    )
    session = browser.open(broken.as_uri())
    assert any("boom" in e for e in browser.errors())
    (image,) = json.loads(browser.evaluate(session, IMAGES))
    assert image["natural"] == 0
