"""The demo: ConceptPrune end to end on the toy world, with an HTML report.

record the calibration set of a texture -> masks at (k, t_hat) -> prune -> oracle before/after
-> report.html (figures, image grids, numbers, provenance) and a JSON summary.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from ..analysis import concept_masks, density, density_per_step, norm_distribution, save_masks
from ..editing import pruned, random_like
from ..evaluation.toy import toy_evaluate
from ..models import load_pipeline, weights_of
from ..models.toyworld import TEXTURES, load_oracle
from ..prompts import get
from ..recording import record
from ..store import open_store
from .plots import before_after, density_bar, density_heatmap, labelled_grid, norm_histogram, write_html


def run_demo(concept: str = "striped", k: float = 2.0, t_hat: int = 10, out: str | Path = "stores/demo", steps: int = 25,
             n_per: int = 2, control: bool = True, progress: bool = True) -> dict:  # fmt: skip
    """Run the demo and return its summary (also written to ``out/summary.json``)."""
    if concept not in TEXTURES or concept == "plain":
        raise ValueError(f"the demo erases a texture: choose one of {[t for t in TEXTURES if t != 'plain']}")
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    pipe, oracle = load_pipeline("toy"), load_oracle()
    say(f"[1/5] recording the calibration set texture:{concept} ({steps} steps)")
    store = record(pipe, get(f"texture:{concept}"), out / "store.zarr", steps=steps, progress=progress)
    tree = open_store(store)
    weights = weights_of(pipe, tree)
    say(f"[2/5] skilled-neuron masks at k={k:g}%, t_hat={t_hat}")
    masks = concept_masks(tree, weights, concept, "plain", k=k, t_hat=t_hat)
    masks.attrs["store"] = str(store)
    mask_path = save_masks(masks, out / "masks.safetensors")
    unet_params = sum(p.numel() for p in pipe.unet.parameters())
    dens = density(masks, total_params=unet_params)
    say("[3/5] generating held-out evaluation prompts with the unpruned model")
    before = toy_evaluate(pipe, oracle, "texture", concept, n_per=n_per, steps=steps)
    say("[4/5] the same prompts and seeds with the masks applied")
    with pruned(pipe, masks):
        after = toy_evaluate(pipe, oracle, "texture", concept, n_per=n_per, steps=steps)
    rnd = None
    if control:
        with pruned(pipe, random_like(masks, seed=0)):
            rnd = toy_evaluate(pipe, oracle, "texture", concept, n_per=n_per, steps=steps)
    say("[5/5] writing the report")
    summary = {
        "concept": concept, "k": k, "t_hat": t_hat, "density": float(dens["overall"]), "density_of_unet": float(dens["of_model"]),
        "store": str(store), "masks": str(mask_path), "report": str(out / "report.html"), "seconds": None,
        "before": before.summary(), "after": after.summary(), "random_control": rnd.summary() if rnd else None,
    }  # fmt: skip
    figs = [
        ("Oracle readings before and after pruning", before_after(before.summary(), after.summary(), concept)),
        ("Skilled-neuron density per site", density_bar(dens)),
        ("Skilled share per site and UNet call", density_heatmap(density_per_step(tree, weights, concept, "plain", k=k))),
        ("Neuron norms, target vs reference", norm_histogram(norm_distribution(tree, [concept, "plain"]))),
        *[
            (
                f"{what} prompts: unpruned, pruned{', random control' if rnd else ''} (the oracle's texture reading on each tile)",
                labelled_grid(scale=4, **_columns(before, after, rnd, what.lower())),
            )
            for what in ("Target", "Other")
        ],
    ]
    summary["seconds"] = round(time.time() - t0, 1)
    write_report(out / "report.html", summary, figs, tree.wb.provenance)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _columns(before, after, rnd, which: str, rows: int = 12) -> dict:
    """``labelled_grid``'s columns, prompts and tiles: the first ``rows`` target or other prompts,
    one column per model, each tile with the oracle's reading that the table's rates count."""
    runs = {"unpruned": before, "pruned": after, **({"random control": rnd} if rnd else {})}
    cols = {k: getattr(r, f"{which}_images")[:rows] for k, r in runs.items()}
    tiles = {k: getattr(r, f"{which}_readings")[:rows] for k, r in runs.items()}
    return {"columns": cols, "prompts": getattr(before, f"{which}_prompts")[:rows], "tiles": tiles}


def write_report(path: Path, summary: dict, figs: list, provenance: dict) -> Path:
    """The demo's report: the numbers table, figures and provenance in one self-contained file."""
    b, a, r = summary["before"], summary["after"], summary.get("random_control")
    esc = html.escape  # every string from the summary (concept, attribute names) is the user's

    def row(name: str, cells: list[float], fmt: str = ".1%") -> str:
        return f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{c:{fmt}}</td>" for c in cells) + "</tr>"

    def cells(get) -> list[float]:
        return [get(b), get(a)] + ([get(r)] if r else [])

    table = "<table><tr><th></th><th>unpruned</th><th>pruned</th>" + ("<th>random control</th>" if r else "") + "</tr>"
    table += row(f"'{summary['concept']}' rate on target prompts", cells(lambda s: s["concept_rate"]))
    table += row("degraded images", cells(lambda s: s["degraded_rate"]))
    for attr in b["other_accuracy"]:
        table += row(f"{attr} accuracy on other prompts", cells(lambda s, attr=attr: s["other_accuracy"][attr]))
    table += row("toy FID on other prompts (oracle features; lower is better)", cells(lambda s: s["fid"]), ".2f")
    table += "</table>"
    intro = f"""<p>k = {float(summary["k"]):g}% of each weight row, first t&#770; = {int(summary["t_hat"])} UNet calls; pruned {float(summary["density"]):.3%} of the
FFN-2 weights ({float(summary["density_of_unet"]):.3%} of all UNet parameters). Ran in {esc(str(summary["seconds"]))} s.</p>
{table}"""
    provenance_text = json.dumps({k: v for k, v in summary.items() if k not in ("before", "after", "random_control")}, indent=1)
    provenance_text += "\n" + json.dumps(provenance, indent=1)
    return write_html(path, f"ConceptPrune on the toy world: erasing '{summary['concept']}'", intro, figs, provenance_text)
