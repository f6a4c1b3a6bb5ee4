"""The notebook runs headless, top to bottom, on a generated run folder."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.spawns  # runs the notebook in an ipykernel process

NOTEBOOK = Path(__file__).resolve().parents[2] / "analysis" / "notebooks" / "readiness.ipynb"


def test_notebook_executes_on_a_run_folder(make_run, monkeypatch, tmp_path):
    from analysis.synthetic import Fault

    run = make_run(faults=[Fault("aurora-failover", "db", 80, 83)], lost_orders=1,
                   checks={"recovery": {"window_s": 1, "windows": 3, "max_s": 30,
                                        "p95_ms": 800, "error_rate": 0.02},
                           "integrity": {"orders": True}})
    monkeypatch.setenv("PEAKREADY_NOTEBOOK_RUN", str(run))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the venv's own ipykernel ("python3" resolves to this interpreter), run in tmp_path
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                        for cell in nb.cells if cell.cell_type == "code"
                        for o in cell.get("outputs", []))
    assert "error" not in {o.get("output_type") for c in nb.cells for o in c.get("outputs", [])}
    assert "recovery after aurora-failover" in outputs
    assert "fail exit code 1" in outputs  # the lost order fails the integrity check
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert (run / "report.html").exists()
