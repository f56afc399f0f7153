"""The example notebook (examples/investigate.ipynb) runs end to end and tells the story."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "investigate.ipynb"


def test_investigate_notebook_executes():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )  # fmt: skip
    client.execute()
    text = []
    images = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            data = output.get("data", {})
            images += "image/png" in data
            text.append(output.get("text", "") + data.get("text/plain", ""))
    joined = "\n".join(text)
    assert "367 sessions; " in joined
    assert "Mail flow halted: send connector 'Outbound to Office 365'" in joined
    assert 'fix:   Set-SendConnector "Outbound to Office 365" -TlsCertificateName' in joined
    assert "454 4.7.5" in joined  # the failed sessions' last error
    assert images == 2  # both figures rendered
