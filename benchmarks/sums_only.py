"""Bytes a prompt of a raw store and of a sums-only store (``record(..., sums_only=True)``) on the
tiny random FLUX pipeline, for growing prompt counts: the raw store grows with the prompts, the
sums-only one keeps the per-set sums (plus the prompts' metadata).

    python benchmarks/sums_only.py          # prints a markdown table (benchmarks/RESULTS.md)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from workbench.models.tiny_transformers import tiny_flux
from workbench.prompts import get
from workbench.recording import record


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    pipe = tiny_flux()
    every = list(get("shape:circle")) + list(get("shape:square")) + list(get("shape:triangle")) + list(get("shape:cross"))
    print(
        "| prompts | raw store, bytes a prompt | sums-only store, bytes a prompt | sums-only store, bytes |\n| --- | --- | --- | --- |"
    )
    for n in (24, 48, 96):
        from workbench.prompts import PromptSet

        prompts = PromptSet(every[:n])
        with tempfile.TemporaryDirectory() as d:
            kw = dict(steps=2, size=16, progress=False, batch_size=8)
            raw = size(record(pipe, prompts, Path(d) / "raw.zarr", **kw))
            sums = size(record(pipe, prompts, Path(d) / "sums.zarr", sums_only=True, **kw))
        print(f"| {n} | {raw / n:,.0f} | {sums / n:,.0f} | {sums:,} |")


if __name__ == "__main__":
    main()
