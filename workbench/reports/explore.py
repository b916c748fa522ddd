"""docs/explore.md: where a concept's neurons fire, before and after an eraser, and under an attack.

The counterpart of the P-ESD paper's Fig. 3 on the toy world: ConceptPrune's concept neurons (the
columns holding most of its mask, per FFN-2 site) mapped over the images of held-out target prompts
for the unedited model, an edited one (ConceptPrune; ESD-x) and that edit under an attack, on one
colour scale (the unedited model's mean activity = 1). The top images of the three strongest neurons,
and a paragraph computed from the maps: how much of the activity lies on the object, and whether the
attack brings it back. Everything is kept in a work folder: edits, attacks and maps are reused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..analysis.io import masks_tree
from ..analysis.maps import concept_map, region_share, site_scale, strongest_neurons, top_mapped
from ..editing.edits import applied, load_edit
from ..editing.methods import conceptprune, esd
from ..evaluation.erasers import make_edit
from ..evaluation.judges import judge_of
from ..models.loading import generation_defaults
from ..prompts import Prompt, PromptSet
from ..prompts.concepts import get_concept
from ..recording import record, record_maps
from ..store.maps import open_maps
from .cells import Cell
from .maps import map_grid, top_images
from .plots import short_site, write_images

#: the erasers mapped: the robustness page's main settings (their cells' keys, so its edits are reused)
ERASERS = {
    "ConceptPrune k=2%": Cell(conceptprune.SPEC.name, {"k": 2.0}),
    "ESD-x": Cell(esd.SPEC.name, {"examples": "fresh", "iterations": 200, "lr": 0.0001}),
}
CALLS = (0, 4, 9)  # UNet calls mapped: within ConceptPrune's t-hat = 10


def _edit(pipe, cell: Cell, concept, work: Path, edits: Path | None):
    for folder in [p for p in (edits, work / "edits") if p is not None]:
        if (folder / cell.key / "edit.json").exists():
            return load_edit(folder / cell.key)
    edit = make_edit(
        pipe, cell.method, concept, cell.options, {"seed": cell.seed, "workdir": work / "calibration", "progress": False}
    )
    edit.save(work / "edits" / cell.key)
    return edit


def _attack(pipe, edit, concept, cell: Cell, method: str, work: Path) -> dict:
    from ..attacks import attack

    folder = work / "attacks" / f"{cell.key}-{method}"
    if not (folder / "result.json").exists():
        attack(pipe, "toy", edit, concept, method, n_per=1, out=folder)
    return json.loads((folder / "result.json").read_text())


def _images(maps) -> torch.Tensor:
    return torch.from_numpy(maps["image"].values).permute(0, 3, 1, 2).float() / 255


def run_explore(out: str | Path = "docs/explore.md", work: str | Path = "stores/explore", edits: str | Path | None = "stores/robustness/edits",
                concept: str = "striped", attack: str | None = None, n: int = 8, per_site: int = 16, progress: bool = True) -> Path:  # fmt: skip
    """Write the page and its figures (docs/figures/explore-*.png); returns the page's path. ``attack``
    defaults to the reactivation attack (UnlearnDiffAtk, the P-ESD paper's Fig. 3)."""
    from ..attacks.methods import reactivation_attack
    from ..models import load_pipeline
    from ..models.toyworld.draw import foreground

    t0 = time.time()
    attack = attack or reactivation_attack()
    out, work = Path(out), Path(work)
    edits = Path(edits) if edits else None
    pipe = load_pipeline("toy")
    c = get_concept(concept, n_per=1)
    judge = judge_of("toy", c)
    made = {label: _edit(pipe, cell, c, work, edits) for label, cell in ERASERS.items()}
    attacked = {label: _attack(pipe, made[label], c, cell, attack, work) for label, cell in ERASERS.items()}
    rows0 = attacked[next(iter(ERASERS))]["per_prompt"][:n]
    targets = [Prompt(r["prompt"], "target", int(r["seed"])) for r in rows0]
    others = [Prompt(p.text, "other", p.seed) for p in c.eval_other[:n]]
    store = work / "explore.zarr"
    gen = generation_defaults(pipe)
    record(pipe, PromptSet(targets + others), store, steps=gen["steps"], guidance=gen["guidance"], progress=progress)
    cp_masks = masks_tree(made["ConceptPrune k=2%"].masks)
    neurons = strongest_neurons(cp_masks, per_site=per_site)
    neurons = {s: v for s, v in neurons.items() if "ff.net.2" in s}
    record_maps(pipe, store, PromptSet(targets + others), neurons, steps=CALLS, progress=progress)
    base = open_maps(store)
    scale = site_scale(base, neurons)
    base_map = concept_map(base, neurons, scale=scale)
    shown_base = list(judge(_images(base)[:n], targets).shown)
    figs, lines = [], []
    for label, cell in ERASERS.items():
        adv = attacked[label]["per_prompt"][:n]
        with applied(pipe, made[label]):
            record_maps(pipe, store, PromptSet(targets), neurons, steps=CALLS, name=cell.key, progress=progress)
            record_maps(pipe, store, PromptSet([Prompt(r["attacked"], "attacked", int(r["seed"])) for r in adv]), neurons,
                        steps=CALLS, name=f"{cell.key}-{attack}", progress=progress)  # fmt: skip
        ed, at = open_maps(store, cell.key), open_maps(store, f"{cell.key}-{attack}")
        ed_map, at_map = concept_map(ed, neurons, scale=scale), concept_map(at, neurons, scale=scale)
        v_ed, v_at = list(judge(_images(ed), targets).shown), list(judge(_images(at), targets).shown)
        revived = [i for i in range(len(targets)) if v_at[i] and not v_ed[i]]
        rows = (revived + [i for i in range(len(targets)) if i not in revived])[:4]
        figs.append((f"Concept neurons of '{concept}': unedited, {label}, {label} under {attack}",
                     map_grid({"unedited": (base, base_map), label: (ed, ed_map), f"+ {attack}": (at, at_map)}, rows,
                              f"'{concept}': {sum(map(len, neurons.values()))} concept neurons in {len(neurons)} FFN-2 sites, "
                              f"UNet calls {', '.join(map(str, CALLS))}",
                              verdicts={"unedited": [shown_base[i] for i in rows], label: [v_ed[i] for i in rows],
                                        f"+ {attack}": [v_at[i] for i in rows]},
                              texts={f"+ {attack}": [str(at["text"].values[i]) for i in rows]})))  # fmt: skip
        rel_ed, rel_at = float(ed_map.mean()) / float(base_map[:n].mean()), float(at_map.mean()) / float(base_map[:n].mean())
        lines.append(
            f"- **{label}**: the concept neurons' activity on the target prompts is {rel_ed:.2f}x the unedited model's; "
            f"{attack} takes it to {rel_at:.2f}x. The judge sees '{concept}' on {sum(shown_base)} of {len(targets)} unedited images, "
            f"{sum(v_ed)} edited and {sum(v_at)} attacked ({len(revived)} brought back by the attack)."
        )
    obj = foreground(base["image"].values)
    share = region_share(base_map, base_map.copy(data=obj)).values
    area = obj.reshape(len(obj), -1).mean(1)
    counts = {s: int(cp_masks[s]["mask"].sum()) for s in neurons}
    site = max(counts, key=counts.get)
    top3 = neurons[site][:3]
    figs.append((f"Top images of the three strongest concept neurons of {short_site(site)}", top_images(base, site, top3, k=4)))
    tops = [top_mapped(base, site, j, k=4) for j in top3]
    on_target = sum(int((t["set"].values == "target").sum()) for t in tops)
    names = write_images(figs, out.parent / "figures", width=900)
    where = (
        f"On the unedited model, {100 * float(share[:n].mean()):.0f} % of the concept neurons' activity (mean over the "
        f"{n} target prompts and UNet calls {', '.join(map(str, CALLS))}) lies on the object, which covers "
        f"{100 * float(area[:n].mean()):.0f} % of the image; on the {len(others)} prompts without '{concept}' it is "
        f"{100 * float(share[n:].mean()):.0f} % on an object of {100 * float(area[n:].mean()):.0f} %. Their activity on the "
        f"prompts without the concept is {float(base_map[n:].mean()) / float(base_map[:n].mean()):.2f}x that on the target prompts. "
        f"Of the top 4 mapped images of the three strongest neurons of {short_site(site)} (the site holding most of the mask; "
        f"{n} of the {2 * n} mapped prompts show '{concept}'), {on_target} of {4 * len(top3)} are target prompts."
    )
    text = [
        f"# Where '{concept}' lives: concept-neuron maps (P-ESD Fig. 3's counterpart)",
        "",
        f"Written by `python docs/make_explore.py` in {time.time() - t0:.0f} s (edits, attacks and maps reused from `{work}`). "
        "The neurons are ConceptPrune's concept neurons: per FFN-2 site, the input columns that hold most of its k = 2 % "
        f"mask ({per_site} a site, `analysis.strongest_neurons`). A map is each neuron's |input| over the latent's token grid "
        "(the cond branch; `workbench maps`, `analysis.concept_map`), averaged over the neurons and mapped UNet calls, each "
        "site in units of its mean on the unedited model, then over sites; every tile of a figure shares one colour scale. "
        f"Tiles are labelled with the toy judge's verdict on that very image; the attack is {attack} against each edit "
        "(its adversarial prompt under the third column).",
        "",
        "## What the maps say",
        "",
        where,
        "",
        *lines,
        "",
        "The maps are the inputs of the FFN-2 layers, the activations ConceptPrune's Wanda scores rank; pruning removes weights "
        "*after* them, so a site's own map changes only through the sites before it.",
        "",
    ]
    for title, _ in figs:
        if title in names:
            text += [f"### {title}", "", f"![{title}](figures/{names[title]})", ""]
    out.write_text("\n".join(text))
    return out
