"""Start-up costs: what a notebook or the CLI pays before doing anything, each in a fresh process.

    python benchmarks/imports.py [--repeats 5]

Prints the median wall time of each command and which heavy libraries it loaded. The last row
imports every public name (what `import workbench` cost when the package imported eagerly).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "diffusers", "transformers", "plotly")
CASES = {
    "import workbench": "import workbench",
    "import workbench.analysis": "import workbench.analysis",
    "import workbench.store": "import workbench.store",
    "workbench --help": "from workbench.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "workbench sets": "from workbench.cli import main\nmain(['sets'])",
    "every public name (the old eager import)": "import workbench as wb\n[getattr(wb, n) for n in wb.__all__]",
}


def run(code: str) -> tuple[float, list[str]]:
    probe = f"{code}\nimport sys, json\nprint('@@' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    dt = time.perf_counter() - t0
    return dt, json.loads(out.rsplit("@@", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    run("import workbench")  # warm the file cache once
    print(f"{'command':45s} {'median s':>9s}  heavy libraries loaded")
    for name, code in CASES.items():
        times, loaded = [], []
        for _ in range(args.repeats):
            dt, loaded = run(code)
            times.append(dt)
        print(f"{name:45s} {statistics.median(times):9.2f}  {', '.join(loaded) or '-'}")


if __name__ == "__main__":
    main()
