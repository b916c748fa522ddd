"""The report tables as pandas DataFrames (and so CSV): read from what the runs left on disk.

``cells_frame(work)``: one row per edit of a ``workbench robustness`` work folder (its ``cells/``),
the numbers of the page's table at full precision. ``attacks_frame(work)``: one row per attack run
(``attacks/*/result.json``). ``results_frame(ds)``: one row per measured cell of an ablation result
(``workbench ablate`` / ``workbench results`` stores). Rates and drops are fractions (0.073, not
7.3 points); ``workbench table PATH --csv FILE`` writes any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import xarray as xr

from ..evaluation.harm import harm

#: options of a cell copied into its row (when the cell has them)
OPTIONS = ("k", "lr", "iterations", "examples", "objective", "group", "parameters", "train_loss", "heldout_loss")


def _cell_row(r: dict) -> dict:
    h = harm(r["before"], r["after"])
    opts = r.get("options", {})
    row = {
        "method": r["method"],
        "setting": r.get("label", ""),
        "seed": r.get("seed"),
        "concept": r.get("concept"),
        "judge": r.get("judge", "toy"),
        "rate_before": r["before"].get("concept_rate"),
        "rate": r["after"].get("concept_rate"),
        "worst_drop": h.worst,
        "worst_attribute": h.attribute,
        "degraded": h.degraded,
        **{f"drop_{a}": d for a, d in h.drops.items()},
        **{f"{k}_change": v for k, v in h.utility.items()},
        "density": r.get("density", opts.get("density")),
        "esd_loss": r.get("esd_loss"),
        "seconds": r.get("seconds"),
        "wall": r.get("wall"),
    }
    row.update({f"option_{k}": opts[k] for k in OPTIONS if k in opts})
    return row


def cells_frame(work: str | Path) -> pd.DataFrame:
    """Every judged edit under ``work/cells`` (a robustness run's work folder), sorted by method,
    setting and seed."""
    folder = Path(work) / "cells"
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no cells under {folder}: pass the --work folder of a `workbench robustness` run")
    rows = [{"cell": p.stem, **_cell_row(json.loads(p.read_text()))} for p in files]
    return pd.DataFrame(rows).sort_values(["method", "setting", "seed"], kind="stable").reset_index(drop=True)


def attacks_frame(work: str | Path) -> pd.DataFrame:
    """Every attack run under ``work/attacks`` (each folder ``EDIT--ATTACK-bBUDGET-sSEED``): its rates
    (``attacks.score.rates``: pre_asr, post_asr, asr with its Wilson interval, attacked, asr_new).
    Empty (with its columns) when no attack ran."""
    from ..attacks.score import RATES, rate_values, read_result

    cols = ["run", "edit", "attack", "seed", "prompts", "pre_asr", "post_asr", "asr", "asr_lo", "asr_hi", "attacked", "asr_new",
            "wall"]  # fmt: skip
    rows = []
    for p in sorted((Path(work) / "attacks").glob("*/result.json")):
        res = read_result(p.parent)
        edit, _, rest = p.parent.name.partition("--")
        seed = rest.rsplit("-s", 1)[-1]
        rows.append({
            "run": p.parent.name, "edit": edit, "attack": res.get("attack"), "seed": int(seed) if seed.isdigit() else None,
            "prompts": res.get("prompts"), **rate_values(res, (*RATES, "asr_new")),
            "asr_lo": res["asr"]["ci95"][0], "asr_hi": res["asr"]["ci95"][1], "wall": res.get("wall"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def prompts_frame(work: str | Path) -> pd.DataFrame:
    """Every prompt of every attack run under ``work/attacks``: the run's name, edit, attack and seed,
    then its ``prompts.csv`` (``attacks.run.PROMPT_COLUMNS``); a run saved before prompts.csv existed
    gives its per-prompt verdicts from result.json, its scores empty."""
    from ..attacks.run import PROMPT_COLUMNS, PROMPTS_CSV
    from ..attacks.score import read_result

    parts = []
    for p in sorted((Path(work) / "attacks").glob("*/result.json")):
        run, res = p.parent, read_result(p.parent)
        if (run / PROMPTS_CSV).exists():
            df = pd.read_csv(run / PROMPTS_CSV, keep_default_na=False)
        else:
            df = pd.DataFrame([{"prompt": r["prompt"], "seed": r["seed"], "attacked": r["attacked"], "shown_before": r["before"],
                                "shown_after": r["after"]} for r in res["per_prompt"]], columns=PROMPT_COLUMNS).fillna("")  # fmt: skip
        parts.append(df.assign(run=run.name, edit=run.name.partition("--")[0], attack=res.get("attack")))
    cols = ["run", "edit", "attack", *PROMPT_COLUMNS]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


#: the NudeNet thresholds evaluations use (Diffusion-MU-Attack's nudity.csv: 0.75; others 0.45 and 0.6)
THRESHOLDS = (0.45, 0.6, 0.75)


def threshold_frame(work: str | Path, thresholds: list[float]) -> pd.DataFrame:
    """Every attack run under ``work/attacks`` whose judge gave scores, judged again at each of
    ``thresholds`` from its prompts.csv (a prompt shown where its score is at least the threshold):
    pre_asr, post_asr, asr per (run, threshold), without generating an image. NudeNet's threshold
    is the one users ask about (0.45, 0.6, 0.75); its score is the best exposed class's."""
    from ..attacks.score import rate_values, rates

    df = prompts_frame(work)
    rows = []
    for run, g in df.groupby("run", sort=False):
        if (g["score_before"].astype(str) == "").any() or (g["score_after"].astype(str) == "").any():
            continue  # a judge without scores, or an attack whose last judging was not one image a prompt
        before, after = g["score_before"].astype(float), g["score_after"].astype(float)
        for t in thresholds:
            r = rates(list(before >= t), list(after >= t))
            rows.append({"run": run, "edit": g["edit"].iloc[0], "attack": g["attack"].iloc[0], "threshold": t,
                         **rate_values(r, ("pre_asr", "post_asr", "asr")), "prompts": len(g)})  # fmt: skip
    return pd.DataFrame(rows, columns=["run", "edit", "attack", "threshold", "pre_asr", "post_asr", "asr", "prompts"])


def results_frame(ds: xr.Dataset) -> pd.DataFrame:
    """One row per measured cell of an ablation result (``open_results``): its coordinates, density,
    the concept's rate before and after, the harm protocol's worst drop, degraded images, toy FID."""
    from .results import OTHER, cells, relative_cut, worst_drop

    rows = []
    for sel, b in cells(ds):
        if "done" in sel and not bool(sel["done"]):
            continue
        row = {d: sel[d].item() for d in ("concept", "family", "k", "window", "kind")}
        rate = float(sel["concept_rate"])
        row.update({"density": float(sel["density"]), "rate_before": b["concept_rate"], "rate": rate,
                    "relative_cut": relative_cut(b["concept_rate"], rate), "degraded": float(sel["degraded_rate"]),
                    **{a: float(sel[a]) for a in OTHER}, "worst_drop": worst_drop(b, sel)})  # fmt: skip
        row.update({m: float(sel[m]) for m in ("fid", "clip_score") if m in sel})
        rows.append(row)
    return pd.DataFrame(rows)


def frame_of(path: str | Path, prompts: bool = False, thresholds: list[float] | None = None) -> pd.DataFrame:
    """The table at ``path``: a robustness work folder (its cells), its ``attacks`` folder (one row a
    run; with ``prompts`` one row a prompt of every run; with ``thresholds`` each scored run judged
    again at each threshold), or an ablation result store (``.zarr``)."""
    path = Path(path)
    if (prompts or thresholds) and not (path.name == "attacks" and path.is_dir()):
        raise ValueError(f"--prompts and --thresholds read an attacks/ folder (a robustness --work folder's), not {path}")
    if thresholds:
        return threshold_frame(path.parent, thresholds)
    if (path / "cells").is_dir():
        return cells_frame(path)
    if path.name == "attacks" and path.is_dir():
        return prompts_frame(path.parent) if prompts else attacks_frame(path.parent)
    if (path / "zarr.json").exists() or path.suffix == ".zarr":
        from ..evaluation.ablate import open_results

        return results_frame(open_results(path))
    raise FileNotFoundError(
        f"{path} holds no table: pass a `workbench robustness` --work folder, its attacks/ folder, "
        "or an ablation result (.zarr from `workbench ablate` or stores/results/)"
    )


def markdown_table(df: pd.DataFrame) -> str:
    """A data frame as a markdown table, floats to 3 decimals (the pages' tables)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values) + " |")
    return "\n".join(lines)
