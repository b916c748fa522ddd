"""Execute the notebooks in place, so that they ship with their outputs and figures.

    python notebooks/execute.py [NAME ...] [--quick]

Each runs top to bottom in a fresh kernel with its full settings (--quick: the small ones the test
suite uses, for a look at the layout); plotly figures are kept as static PNGs (PLOTLY_RENDERER=png,
through Kaleido and the local Chromium), so a code host shows them. Widget state is not kept (the
explorer's plotly widgets would carry plotly.js each, megabytes): run 06 to use the explorer. Stores
go to ../stores as when a user runs them. The time each took
is printed; the notebooks' own headers state the expected time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks to run (default: all), e.g. 06_explore")
    ap.add_argument("--quick", action="store_true", help="the test suite's small settings")
    args = ap.parse_args()
    paths = sorted(HERE.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names or p.name in args.names]
    os.environ["PLOTLY_RENDERER"] = "png"
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    if args.quick:
        os.environ["WORKBENCH_NOTEBOOK_QUICK"] = "1"
    for path in paths:
        t0 = time.time()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=3600, kernel_name="python3", store_widget_state=False,
                       resources={"metadata": {"path": str(HERE)}}).execute()  # fmt: skip
        nb.metadata.pop("widgets", None)  # no widget state (see above), also none left from an earlier run
        nbformat.write(nb, path)
        print(f"{path.name}: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
