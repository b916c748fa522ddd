"""Neuron norms n_t^l(P) per site and step, from a recording store (no model run).

``wanda``   n[j] = sqrt(sum over prompts in P and tokens of h_j^2), cond branch by default:
            the paper's equation 3.
``authors`` the same over per-token L2-normalised h, with both CFG branches pooled: what the
            authors' public code computes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

NORMALISATIONS = {"wanda": ("sumsq", "cond"), "authors": ("sumsq_unit", "both")}


def site_names(tree: xr.DataTree) -> list[str]:
    return list(tree.attrs["sites"])


def prompt_index(tree: xr.DataTree, prompt_set: str | list[str]) -> np.ndarray:
    """Store indices of the prompts of one set (or several), with a clear error for unknown names."""
    names = [prompt_set] if isinstance(prompt_set, str) else list(prompt_set)
    sets = tree["set"].values.astype(str)
    known = list(dict.fromkeys(sets.tolist()))
    for n in names:
        if n not in known:
            raise ValueError(
                f"prompt set {n!r} is not in this store: it holds {known}; record it with `workbench record --prompts ...`"
            )
    return np.flatnonzero(np.isin(sets, names))


def _branches(tree: xr.DataTree, branch: str) -> list[str]:
    have = [str(b) for b in tree["branch"].values]
    if branch == "both":
        return have
    if branch not in have:
        raise ValueError(f"branch {branch!r} was not recorded (the store has {have}); record with guidance > 1 for both branches")
    return [branch]


def norms(tree: xr.DataTree, prompt_set: str | list[str], normalisation: str = "wanda", branch: str | None = None,
          sites: list[str] | None = None) -> xr.DataTree:  # fmt: skip
    """A DataTree with one group per site holding ``norm`` (step, neuron) [text sites: (neuron,)]."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}: use one of {list(NORMALISATIONS)}")
    stat, default_branch = NORMALISATIONS[normalisation]
    if stat not in tree.attrs["stats"]:
        raise ValueError(f"this store has no {stat!r} statistic ({normalisation} needs it): record again with --stats {stat},...")
    idx = prompt_index(tree, prompt_set)
    br = _branches(tree, branch or default_branch)
    out = {}
    for site in sites or site_names(tree):
        var = tree[site][stat]
        sel = var.isel(prompt=idx).sel(branch=br)
        total = sel.sum(["prompt", "branch"], skipna=False)
        out[site] = xr.Dataset({"norm": np.sqrt(total).astype("float32")})
    result = xr.DataTree.from_dict(out)
    result.attrs.update(prompt_set=str(prompt_set), normalisation=normalisation, branch=",".join(br))
    return result
