"""Which neurons an attack switches back on: sensitivity of concept neurons vs the others.

For a site with weight W (d x d') and a store recorded on the *edited* model, the Wanda-scaled
activation of input neuron j at UNet call t for prompt set P is

    a_t(P)[j] = n_t(P)[j] * mean_i |W_ij|          (n_t: the norms of ``norms()``, eq. 3)

i.e. the Wanda score of the column averaged over its output rows. The sensitivity of neuron j to
an attack, from the clean prompts P to the attacked prompts A (same targets, attacked), is

    sens[j] = mean over t in the window of (a_t(A)[j] - a_t(P)[j]) / mean_j' a_t(P)[j']

a signed change in units of the site's mean activation at that step: > 0 when the attack raises
the neuron (reactivation). Concept neurons are the columns holding at least one entry of a
ConceptPrune skilled mask computed on the *unedited* model's store (any row pruned). This is our
definition; the P-ESD paper's figures 2, 3 and 5 name a "sensitivity score" without a formula.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .norms import norms, site_names
from .weights import abs_weight
from .windows import step_window


def wanda_activation(tree: xr.DataTree, weights: dict, prompt_set, sites: list[str] | None = None,
                     normalisation: str = "wanda") -> xr.DataTree:  # fmt: skip
    """Per site ``activation`` (step, neuron): n_t(P)[j] * mean_i |W_ij|."""
    sites = sites or site_names(tree)
    n = norms(tree, prompt_set, normalisation, sites=sites)
    out = {}
    for s in sites:
        norm = n[s]["norm"]
        col = abs_weight(weights, s, norm.sizes["neuron"]).mean(0)
        out[s] = xr.Dataset({"activation": norm * xr.DataArray(col, dims="neuron")})
    return xr.DataTree.from_dict(out)


def concept_neurons(masks: xr.DataTree) -> xr.DataTree:
    """Per site ``concept`` (neuron) bool: columns with any entry in the (skilled) mask."""
    return xr.DataTree.from_dict({s: xr.Dataset({"concept": masks[s]["mask"].any("row")}) for s in masks.wb.sites})


def sensitivity(clean: xr.DataTree, attacked: xr.DataTree, weights: dict, clean_set, attacked_set, t_hat: int | None = None,
                window=None, sites: list[str] | None = None) -> xr.DataTree:  # fmt: skip
    """Per site ``sensitivity`` (neuron), and the two activations (step, neuron) it compares.
    ``clean`` and ``attacked`` may be one store (two prompt sets) or two; the window defaults to
    every step."""
    sites = sites or [s for s in site_names(clean) if "step" in clean[s].dims]
    n_steps = clean.sizes["step"]
    if attacked.sizes["step"] != n_steps:
        raise ValueError(f"the stores hold {n_steps} and {attacked.sizes['step']} UNet calls: record both with the same --steps")
    steps = step_window(n_steps, t_hat, "all" if t_hat is None and window is None else window)
    a = wanda_activation(clean, weights, clean_set, sites)
    b = wanda_activation(attacked, weights, attacked_set, sites)
    out = {}
    for s in sites:
        x, y = a[s]["activation"].isel(step=steps), b[s]["activation"].isel(step=steps)
        scale = x.mean("neuron")
        rel = ((y - x) / scale.where(scale > 0)).mean("step")
        out[s] = xr.Dataset({"sensitivity": rel, "clean": x, "attacked": y})
    tree = xr.DataTree.from_dict(out)
    tree.attrs.update(clean_set=str(clean_set), attacked_set=str(attacked_set), steps=list(steps), sites=list(sites))
    return tree


def sensitivity_summary(sens: xr.DataTree, concept: xr.DataTree) -> xr.DataArray:
    """Mean sensitivity of concept neurons and of the others, per site and over all sites
    (site 'all': neurons pooled): dims (site, group)."""
    rows, pooled = {}, {"concept": [], "other": []}
    for s in sens.wb.sites:
        v = sens[s]["sensitivity"].values
        c = concept[s]["concept"].values.astype(bool) if s in concept.children else np.zeros(v.shape, bool)
        rows[s] = [float(np.nanmean(v[c])) if c.any() else np.nan, float(np.nanmean(v[~c])) if (~c).any() else np.nan]
        pooled["concept"].append(v[c])
        pooled["other"].append(v[~c])
    rows["all"] = [
        float(np.nanmean(np.concatenate(pooled[g]))) if np.concatenate(pooled[g]).size else np.nan for g in ("concept", "other")
    ]
    return xr.DataArray(list(rows.values()), dims=("site", "group"), coords={"site": list(rows), "group": ["concept", "other"]},
                        name="sensitivity")  # fmt: skip


def concept_activity(runs: dict[str, tuple[xr.DataTree, str]], weights: dict, concept: xr.DataTree) -> xr.DataArray:
    """Mean Wanda-scaled activation of the concept neurons per step, for several runs (e.g.
    unedited, edited, attacked): ``runs`` maps a name to (store, prompt set); dims (run, step)."""
    out = []
    sites = [s for s in concept.children]
    for _name, (tree, pset) in runs.items():
        act = wanda_activation(tree, weights, pset, sites)
        per_site = [
            act[s]["activation"].where(concept[s]["concept"]).mean("neuron") for s in sites if concept[s]["concept"].any()
        ]
        out.append(xr.concat(per_site, "site").mean("site"))
    return xr.concat(out, "run").assign_coords(run=list(runs)).rename("activity")
