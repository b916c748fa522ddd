"""Seconds per edit of every eraser in a robustness work folder, by protocol: the rows of
benchmarks/RESULTS.md's erasers table, read from the cells (each cell's ``seconds`` is making the
edit, its ``wall`` that plus judging it).

    python benchmarks/eraser_times.py stores/robustness
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(work: Path) -> list[str]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for p in sorted((work / "cells").glob("*.json")):
        r = json.loads(p.read_text())
        if r["method"].startswith("random"):
            continue
        o = r.get("options", {})
        protocol = o.get("examples", "-") if o.get("objective") else "-"
        groups.setdefault((r["method"], f"{r['label']}, {protocol}"), []).append(r)
    out = ["| eraser | setting, examples | edits | seconds to make (min-max) | with judging (min-max) |",
           "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for (method, setting), rs in groups.items():
        s = sorted(r["seconds"] for r in rs)
        w = sorted(r["wall"] for r in rs if r.get("wall") is not None)
        span = f"{s[0]:.1f}-{s[-1]:.1f}" if len(s) > 1 else f"{s[0]:.1f}"
        wall = (f"{w[0]:.1f}-{w[-1]:.1f}" if len(w) > 1 else f"{w[0]:.1f}") if w else "-"
        out.append(f"| {method} | {setting} | {len(rs)} | {span} | {wall} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="a `workbench robustness --work` folder")
    print("\n".join(rows(ap.parse_args().work)))


if __name__ == "__main__":
    main()
