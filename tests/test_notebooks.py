"""The notebooks run top to bottom on the toy world (small parameters)."""

import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One stores folder for every notebook: the striped store 01 records, 02 and 04 reuse
    (record() skips prompts already there), as a user's notebooks share stores/."""
    return tmp_path_factory.mktemp("nb-stores")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, stores, monkeypatch):
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("WORKBENCH_NOTEBOOK_STORES", str(stores))
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert len(outputs) >= 3
    assert any(p.suffix == ".zarr" for p in stores.rglob("*.zarr"))  # the notebooks wrote their stores there


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_header_says_what_and_a_measured_time(path):
    """Each header says what it shows and what to look for, and its time is the one notebooks/execute.py
    measured and wrote (seconds, machine, the command that reruns it, the date), never typed by hand."""
    head = nbformat.read(path, as_version=4).cells[0].source
    assert "**What it shows.**" in head and "**What to look for.**" in head
    stamp = re.search(r"^\*\*Time\.\*\* (\d+) s on (.+?) \(`python notebooks/execute.py (\S+?)( --quick)?`, (\d{4}-\d\d-\d\d)\)\.$",
                      head, flags=re.M)  # fmt: skip
    assert stamp, f"{path.name}: run `python notebooks/execute.py {path.stem}` to write its measured time"
    assert stamp.group(3) == path.stem
