"""The demo shipped inside the package: the sample incident of ``sample_logs/incident``.

``incident.zip`` holds the same files (logs and inventory) and is rebuilt by
``python sample_logs/incident/make_incident.py``; a test checks that the two agree.
"""

from __future__ import annotations

import tempfile
import zipfile
from importlib import resources
from pathlib import Path

ARCHIVE = "incident.zip"


def demo_folder() -> Path:
    """The incident unpacked into a fresh temporary folder (removed at interpreter exit)."""
    target = Path(tempfile.mkdtemp(prefix="loganalyzer-demo-")) / "incident"
    packaged = resources.files(__package__) / ARCHIVE
    with resources.as_file(packaged) as archive, zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            name = Path(info.filename)
            if name.is_absolute() or ".." in name.parts:
                continue  # our own archive, but never trust member names
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not info.is_dir():
                path.write_bytes(bundle.read(info))
    _cleanup(target.parent)
    return target


def _cleanup(folder: Path) -> None:
    import atexit
    import shutil

    atexit.register(shutil.rmtree, folder, True)
