"""Overlap between concepts' masks: Jaccard per site, in total, as matrices and per step."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .masks import step_mask
from .norms import norms, site_names
from .weights import abs_weight


def jaccard(a: xr.DataTree, b: xr.DataTree) -> xr.Dataset:
    """Jaccard |A & B| / |A | B| per shared site (``per_site``) and over all of them (``total``)."""
    sites = [s for s in a.wb.sites if s in b.children]
    inter = np.array([int((a[s]["mask"] & b[s]["mask"]).sum()) for s in sites])
    uni = np.array([int((a[s]["mask"] | b[s]["mask"]).sum()) for s in sites])
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(uni > 0, inter / np.maximum(uni, 1), np.nan)
    total = inter.sum() / uni.sum() if uni.sum() else np.nan
    return xr.Dataset({"per_site": ("site", per), "total": total}, coords={"site": sites})


def overlap_matrix(masks: dict[str, xr.DataTree]) -> xr.DataArray:
    """Concept x concept Jaccard over all sites."""
    names = list(masks)
    m = np.ones((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i < j:
                m[i, j] = m[j, i] = float(jaccard(masks[a], masks[b])["total"])
    return xr.DataArray(m, dims=("concept", "concept_2"), coords={"concept": names, "concept_2": names}, name="jaccard")


def overlap_per_step(tree: xr.DataTree, weights: dict, concepts: dict[str, tuple[str, str]], k: float = 2.0,
                     normalisation: str = "wanda") -> xr.DataArray:  # fmt: skip
    """Jaccard of per-step masks M_t between every pair of concepts: (step, concept, concept_2).
    ``concepts`` maps a name to its (target set, reference set)."""
    names = list(concepts)
    sites = [s for s in site_names(tree) if tree.wb.site_info[s]["component"] == "unet"]
    n_steps = tree.sizes["step"]
    inter = np.zeros((n_steps, len(names), len(names)))
    uni = np.zeros_like(inter)
    nrm = {
        c: (norms(tree, t, normalisation, sites=sites), norms(tree, r, normalisation, sites=sites))
        for c, (t, r) in concepts.items()
    }
    for s in sites:
        w = abs_weight(weights, s, tree[s].sizes["neuron"])
        # read each concept's norms from the store once per site, not once per step
        tgt = {c: nrm[c][0][s]["norm"].values for c in names}
        ref = {c: nrm[c][1][s]["norm"].values for c in names}
        nonzero = w > 0
        for t in range(n_steps):
            ms = [step_mask(w, tgt[c][t], ref[c][t], k, at_least_one=normalisation != "authors", nonzero=nonzero) for c in names]
            for i in range(len(names)):
                for j in range(len(names)):
                    inter[t, i, j] += np.count_nonzero(ms[i] & ms[j])
                    uni[t, i, j] += np.count_nonzero(ms[i] | ms[j])
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(uni > 0, inter / np.maximum(uni, 1), np.nan)
    return xr.DataArray(
        jac,
        dims=("step", "concept", "concept_2"),
        coords={"step": np.arange(n_steps), "concept": names, "concept_2": names},
        name="jaccard",
    )
