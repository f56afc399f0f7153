"""Make docs/report-screenshot.png: the demo report's page in headless Chromium.

Run from the project folder after an intended change of the page:
``.venv/bin/python docs/screenshot.py`` (needs ``chromium``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import Browser, find_browser  # noqa: E402


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="loganalyzer-shot-"))
    cli = Path(sys.executable).with_name("loganalyzer")
    subprocess.run([str(cli), "report", "--out", str(out), "--quiet"], cwd=ROOT, check=True)
    with Browser(find_browser() or "chromium") as browser:
        session = browser.open((out / "report.html").as_uri(), width=1200, height=1500)
        png = browser.screenshot(session)
    target = ROOT / "docs" / "report-screenshot.png"
    target.write_bytes(png)
    print(f"{target.relative_to(ROOT)}: {len(png):,} bytes")


if __name__ == "__main__":
    main()
