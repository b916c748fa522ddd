"""docs/benchmark.md and benchmark.csv from ``reports.benchmark``'s table: the definitions, one
row per eraser (means over the toy concepts), the frontier figure, every cell, and what the numbers
say, every number computed from the table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..evaluation.harm import BUDGET
from ..evaluation.judges.pins import pin_line
from .frames import markdown_table
from .kept import write_keeping

MEANS = ("UA", "IRA", "CRA", "fid", "pre_asr", "post_asr", "asr")


def per_eraser(table: pd.DataFrame) -> pd.DataFrame:
    """Each eraser's mean over the concepts (the unedited model first) and its cells' total seconds."""
    g = table.groupby("eraser", sort=False)
    out = g[list(MEANS)].mean()
    out["concepts"] = g.size()
    out["seconds"] = g["cell_seconds"].sum() + g["attack_seconds"].sum()
    return out.reset_index()


def best_within_budget(means: pd.DataFrame) -> str:
    """A sentence: the eraser with the highest mean UA whose IRA and CRA each stay within the harm
    budget of the unedited model's, and where the others stand."""
    base = means[means["eraser"] == "unedited"].iloc[0]
    ok = means[(means["eraser"] != "unedited") & (means["IRA"] >= base["IRA"] - BUDGET) & (means["CRA"] >= base["CRA"] - BUDGET)]
    over = [e for e in means["eraser"] if e != "unedited" and e not in set(ok["eraser"])]
    if ok.empty:
        return (f"No eraser keeps both IRA and CRA within {BUDGET:.2f} of the unedited model's "
                f"({base['IRA']:.3f}, {base['CRA']:.3f}) on average.")  # fmt: skip
    top = ok.sort_values("UA", ascending=False).iloc[0]
    return (f"Within a harm budget of {BUDGET:.2f} (IRA and CRA each at most that far below the unedited model's "
            f"{base['IRA']:.3f} and {base['CRA']:.3f}, means over concepts), {top['eraser']} erases most: UA "
            f"{top['UA']:.3f}, ASR {top['asr']:.3f} (pre {top['pre_asr']:.3f} + post {top['post_asr']:.3f}). "
            f"{'Over the budget: ' + ', '.join(over) + '.' if over else 'Every eraser is within it.'}")  # fmt: skip


def write_page(out: Path, table: pd.DataFrame, attack: str, seconds: int, n_per: int, model: str) -> Path:
    """The page and its CSV (``benchmark.csv`` beside it) and figure."""
    from .plots import benchmark_frontier, write_images

    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_name("benchmark.csv"), index=False)
    figs = write_images([("benchmark frontier", benchmark_frontier(table))], out.parent / "figures")
    means = per_eraser(table)
    pins = {p for p in table["judge_pinned"] if p and p != "null"}
    total = table["cell_seconds"].sum() + table["attack_seconds"].sum()
    concepts = list(dict.fromkeys(table["concept"]))
    text = f"""# Benchmark: every eraser on every toy concept, in UnlearnCanvas's form

Written by `workbench benchmark` on `{model}`; this run took {seconds} s, reusing the cells under its
--work folder; making, judging and attacking the {len(table) - len(concepts)} edits took {total / 60:.0f} min of cell
time in all ({total / max(1, len(table) - len(concepts)):.0f} s a cell on average, the unedited model's attacks included).
Concepts: {", ".join(concepts)} (kind: the attribute each belongs to). Erasers: each registered eraser's
main setting (`workbench erase --method`), one edit per concept, seed 0. Held-out prompts: the concept's
(`toy:eval`, {n_per} per texture x colour x shape), judged by the toy oracle.
{" ".join(pin_line(json.loads(p)) for p in sorted(pins)) or pin_line(None)}

Definitions (`reports/benchmark.py`; the data: [benchmark.csv](benchmark.csv), columns
{", ".join(c for c in table.columns if c != "judge_pinned")}):

- **UA** (unlearning accuracy): the share of the concept's target images where the oracle does not see it.
- **IRA** (in-domain retain accuracy): the accuracy of the concept's own attribute (a texture's texture) on
  the held-out prompts without the concept.
- **CRA** (cross-domain retain accuracy): the mean accuracy of every other attribute on those prompts.
- **toy FID** of those images against drawings of their captions.
- **pre-ASR, post-ASR, ASR** under `{attack}` (Diffusion-MU-Attack's: shown without attack; shown only
  after it; their sum), on the concept's held-out target prompts.

## Means over the concepts

{markdown_table(means)}

{best_within_budget(means)}

{"".join(f"![{t}](figures/{n})" for t, n in figs.items())}

## Every cell

{markdown_table(table.drop(columns=["judge_pinned"]))}
"""
    return write_keeping(out, text, "workbench benchmark")
