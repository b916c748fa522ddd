"""docs/features.md: does a toy concept live in a feature more than in a neuron?

On the toy world, where an oracle says what each image shows: the toy textures' and shapes'
prompts are recorded, their tokens sampled at every transformer block's output (the residual
stream) and FFN input (the neurons), an SAE trained on each block output, and for every concept,
site and window of denoiser calls the best single unit's AUROC for the oracle's presence label:
a feature's (the SAE's), a residual dimension's, an FFN neuron's. AUROC is taken direction-free
(max(AUC, 1 - AUC)): a unit that falls when the concept is shown detects it too. Then the erasure
side: feature ablation beside ConceptPrune and AC on one concept, as concept left against harm
(the one harm function), each setting a cell kept on disk so a stopped run resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.features import auroc, unit_activations
from ..attacks.methods import gradient
from ..editing.methods import ac, conceptprune, features
from ..evaluation.erasers import erase_and_judge
from ..evaluation.judges import make_judge
from ..models import load_pipeline
from ..models.sites import select
from ..prompts import get
from ..prompts.concepts import get_concept
from ..recording import record
from ..recording.sae import SAEOptions, StoreSource, train_sae
from ..recording.samples import SampleOptions, record_samples
from ..store.saes import load_sae
from ..store.samples import open_samples

CONCEPTS = ("striped", "dotted", "checkered", "circle", "square", "triangle", "cross")
CALLS = (0, 4, 8, 12, 16, 20, 24)
WINDOWS = {"early (calls 0-8)": (0, 4, 8), "middle (12-16)": (12, 16), "late (20-24)": (20, 24), "all": CALLS}
#: label shuffles for the chance level of a best unit's AUROC
CHANCE_DRAWS = 3
#: SAeUron's site on SD 1.5 (the last up level's second attention), its analogue here
SAEURON_SITE = "up_blocks.1.attentions.1.transformer_blocks.0"
SAE = SAEOptions(k=32, expansion=16, epochs=10, batch_size=1024, buffer=32, lr=5e-4)
#: the attacks run on each eraser's matched-harm setting
ATTACKS = (gradient.UNLEARNDIFF.name, gradient.SOFTPROMPT.name)
#: the erasure cells: (method, options), on ERASED
ERASED = "striped"
CELLS = [(conceptprune.SPEC.name, {"k": k}) for k in (2.0, 5.0, 10.0)] + [(ac.SPEC.name, {"lr": 1e-4, "iterations": 200})] + [
    (features.SPEC.name, {"features": n, "scale": s, "sae": "{sae}"}) for n, s in ((8, -1.0), (32, -1.0), (32, -4.0), (128, 0.0))]  # fmt: skip


def prepare(pipe, work: Path) -> Path:
    """The store, its token samples and one SAE per block output (each step resumes)."""
    store = work / "toy.zarr"
    record(pipe, get("toy:textures") + get("toy:shapes"), store, progress=True)
    record_samples(pipe, store, SampleOptions(sites=["block", "ffn2"], steps=CALLS, tokens=0, batch_size=16))
    for site in select(pipe, "block"):
        if not (work / "saes" / site.name / "cfg.json").exists():
            train_sae(StoreSource(store, site.name), work / "saes" / site.name, SAE)
    return store


def labels(samples, concept: str) -> np.ndarray:
    """The oracle's reading of each sampled image: does it show the concept?"""
    images = torch.from_numpy(samples["image"].values).permute(0, 3, 1, 2).float() / 255
    judge = make_judge("toy", get_concept(concept))
    return judge(images, list(samples["text"].values)).shown


def auroc_table(pipe, store: Path, work: Path) -> pd.DataFrame:
    """Best single unit's AUROC per concept, site and window, for features, residual dims and neurons."""
    s = open_samples(store)
    rows = []
    found = {c: labels(s, c) for c in CONCEPTS}
    for site in select(pipe, "block"):
        sae = load_sae(work / "saes" / site.name)
        acts = {"feature": unit_activations(s, site.name, sae), "residual": unit_activations(s, site.name),
                "neuron": unit_activations(s, site.name + ".ff.net.2")}  # fmt: skip
        for concept, y in found.items():
            for window, calls in WINDOWS.items():
                best = {kind: _best(da, y, calls) for kind, da in acts.items()}
                # the same maximum with the labels shuffled: what the best of this many units reaches by chance
                chance = {f"{kind} chance": float(np.mean([_best(da, rng.permutation(y), calls) for rng in _draws()]))
                          for kind, da in acts.items()}  # fmt: skip
                rows.append({"concept": concept, "site": site.name, "window": window, "shown": int(y.sum()), **best, **chance,
                             "ev": sae.info["metrics"]["explained_variance"], "l0": sae.info["metrics"]["l0"],
                             "dead": sae.info["metrics"]["dead_features"], "d_sae": sae.d_sae})  # fmt: skip
    return pd.DataFrame(rows)


def _best(acts, y, calls) -> float:
    a = auroc(acts, y, calls).values
    return float(np.maximum(a, 1 - a).max())


def _draws() -> list[np.random.Generator]:
    return [np.random.default_rng([7, i]) for i in range(CHANCE_DRAWS)]


def erasure(pipe, work: Path, table: pd.DataFrame) -> pd.DataFrame:
    """The erasure cells on ``ERASED`` (each kept as JSON in work/cells): ``CELLS``, with feature
    ablation at SAeUron's site, and feature ablation again at the site of the concept's best feature."""
    from ..editing.make import make_edit

    whole = table[(table["concept"] == ERASED) & (table["window"] == "all")]
    best_site = str(whole.loc[whole["feature"].idxmax(), "site"])
    extra = [(features.SPEC.name, {**o, "site": best_site}) for m, o in CELLS if m == features.SPEC.name]
    rows = []
    for method, options in CELLS + extra:
        site = options.get("site", SAEURON_SITE)
        sae = work / "saes" / site
        opts = (
            {k: (str(sae) if v == "{sae}" else v) for k, v in {**options, "site": site}.items()}
            if method == features.SPEC.name
            else options
        )
        name = method + "-" + "-".join(f"{k}={v}" for k, v in options.items() if k != "sae")
        cell = work / "cells" / f"{ERASED}-{name}.json"
        if not cell.exists():
            edit = make_edit(pipe, method, ERASED, opts, {"progress": False, "workdir": str(work / "calibration" / name)})
            edit.save(work / "edits" / name)
            r = erase_and_judge(pipe, "toy", edit)
            cell.parent.mkdir(parents=True, exist_ok=True)
            cell.write_text(json.dumps({"before": r["before"]["concept_rate"], "after": r["after"]["concept_rate"],
                                        "harm": r["harm"]["worst"], "fid": r["harm"]["utility"].get("fid")}))  # fmt: skip
        shown = {
            k: (str(Path(v).relative_to(work)) if k == "sae" else v) for k, v in opts.items()
        }  # work-relative: the CSV travels
        rows.append({"eraser": method, "setting": name, "options": json.dumps(shown), **json.loads(cell.read_text())})
    return pd.DataFrame(rows)


def attacked(pipe, work: Path, chosen: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Each eraser's matched-harm setting under ``ATTACKS`` (a cell each, kept as JSON)."""
    from ..attacks import attack, read_result
    from ..attacks.score import rate_values
    from ..editing.edits import load_edit
    from ..editing.make import make_edit

    rows = []
    for _, r in chosen.iterrows():
        if r["setting"] not in set(cells["setting"]):
            continue
        folder = work / "edits" / r["setting"]
        if not (folder / "edit.json").exists():  # made before edits were kept: made again (seeded, the same edit)
            row = cells[cells["setting"] == r["setting"]].iloc[0]
            opts = {k: (str(work / v) if k == "sae" else v) for k, v in json.loads(row["options"]).items()}
            make_edit(pipe, row["eraser"], ERASED, opts,
                      {"progress": False, "workdir": str(work / "calibration" / r["setting"])}).save(folder)  # fmt: skip
        for method in ATTACKS:
            run = work / "attacks" / f"{r['setting']}-{method}"
            if not (run / "result.json").exists():
                attack(pipe, "toy", load_edit(folder), ERASED, method, seed=0, out=run)
            res = read_result(run)
            rows.append({"eraser": r["eraser"], "setting": r["setting"], "attack": method,
                         **rate_values(res), "n": res["prompts"],
                         "ci95": res["asr"]["ci95"]})  # fmt: skip
    return pd.DataFrame(rows)


def run_features(out: str | Path = "docs/features.md", work: str | Path = "stores/features") -> Path:
    """Make everything (resuming what is there) and write the page and its CSVs beside it."""
    from .features_page import matched, write_page

    work = Path(work)
    pipe = load_pipeline("toy")
    store = prepare(pipe, work)
    table = auroc_table(pipe, store, work)
    cells = erasure(pipe, work, table)
    attacks = attacked(pipe, work, matched(cells), cells)
    return write_page(Path(out), table, cells, ERASED, attacks)
