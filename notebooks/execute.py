"""Execute the notebooks in place, so that they ship with their outputs and figures.

    python notebooks/execute.py [NAME ...] [--quick]

Each runs top to bottom in a fresh kernel with its full settings (--quick: the small ones the test
suite uses, for a look at the layout); plotly figures are kept as static PNGs (PLOTLY_RENDERER=png,
through Kaleido and the local Chromium), so a code host shows them. Widget state is not kept (the
explorer's plotly widgets would carry plotly.js each, megabytes): run 06 to use the explorer. Stores
go to a fresh temporary folder (``--stores DIR`` to keep them), so each time is that of a first run
(a notebook reuses what an earlier one in the same run recorded, as it would for a user). The time each took is printed and written into the
notebook's header (its "**Time.**" line: seconds, the machine, the command, the date), so the header
never states a time that was not measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def machine() -> str:
    """'2 CPU cores', or the GPU's name when the notebooks ran with one."""
    import torch

    if torch.cuda.is_available():
        return f"one {torch.cuda.get_device_name(0)}"
    return f"{len(os.sched_getaffinity(0))} CPU cores"


def stamp(nb, stem: str, seconds: float, quick: bool) -> None:
    """Write the measured time into the header cell's "**Time.**" line (added when missing)."""
    cmd = f"python notebooks/execute.py {stem}{' --quick' if quick else ''}"
    line = (f"**Time.** {seconds:.0f} s on {machine()}{' at the small settings the test suite uses' if quick else ''} "
            f"(`{cmd}`, {datetime.date.today().isoformat()}).")  # fmt: skip
    head = nb.cells[0]
    if re.search(r"^\*\*Time\.\*\*.*$", head.source, flags=re.M):
        head.source = re.sub(r"^\*\*Time\.\*\*.*$", lambda _: line, head.source, count=1, flags=re.M)
    else:
        head.source = head.source.rstrip() + "\n\n" + line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks to run (default: all), e.g. 06_explore")
    ap.add_argument("--quick", action="store_true", help="the test suite's small settings")
    ap.add_argument("--stores", default=None, help="where the notebooks write their stores (default: a fresh temporary folder)")
    args = ap.parse_args()
    paths = sorted(HERE.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names or p.name in args.names]
    os.environ["PLOTLY_RENDERER"] = "png"
    os.environ["WORKBENCH_NOTEBOOK_STORES"] = args.stores or tempfile.mkdtemp(prefix="workbench-notebooks-")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    if args.quick:
        os.environ["WORKBENCH_NOTEBOOK_QUICK"] = "1"
    for path in paths:
        t0 = time.time()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=3600, kernel_name="python3", store_widget_state=False,
                       resources={"metadata": {"path": str(HERE)}}).execute()  # fmt: skip
        nb.metadata.pop("widgets", None)  # no widget state (see above), also none left from an earlier run
        seconds = time.time() - t0
        stamp(nb, path.stem, seconds, args.quick)
        nbformat.write(nb, path)
        print(f"{path.name}: {seconds:.0f} s")


if __name__ == "__main__":
    main()
