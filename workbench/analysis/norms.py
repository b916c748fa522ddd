"""Neuron norms n_t^l(P) per site and step, from a recording store (no model run).

``wanda``   n[j] = sqrt(sum over prompts in P and tokens of h_j^2), cond branch by default:
            the paper's equation 3.
``authors`` the same over per-token L2-normalised h, with both CFG branches pooled: what the
            authors' public code computes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..store import StoreError

NORMALISATIONS = {"wanda": ("sumsq", "cond"), "authors": ("sumsq_unit", "both")}


def site_names(tree: xr.DataTree) -> list[str]:
    return list(tree.wb.sites)


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


def branches_of(tree: xr.DataTree, branch: str) -> list[str]:
    have = [str(b) for b in tree["branch"].values]
    if branch == "both":
        return have
    if branch not in have:
        raise ValueError(f"branch {branch!r} was not recorded (the store has {have}); record with guidance > 1 for both branches")
    return [branch]


def norms(tree: xr.DataTree, prompt_set: str | list[str], normalisation: str = "wanda", branch: str | None = None,
          sites: list[str] | None = None, steps=None) -> xr.DataTree:  # fmt: skip
    """A DataTree with one group per site holding ``norm`` (step, neuron) [text sites: (neuron,)].

    ``steps`` (a slice or index list) keeps only those steps, and reads only them. The sums come
    from the store's per-set reductions when it has them (megabytes), else from the raw store (all
    sites in one dask compute); both sum in float64, so the two agree."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}: use one of {list(NORMALISATIONS)}")
    stat, default_branch = NORMALISATIONS[normalisation]
    if stat not in tree.attrs["stats"]:
        raise ValueError(f"this store has no {stat!r} statistic ({normalisation} needs it): record again with --stats {stat},...")
    idx = prompt_index(tree, prompt_set)
    names = [prompt_set] if isinstance(prompt_set, str) else list(dict.fromkeys(prompt_set))
    br = branches_of(tree, branch or default_branch)
    red = tree.children.get("reductions")
    totals = {}
    for site in sites or site_names(tree):
        if red is not None and site in red.children and stat in red[site]:
            sel = red[site][stat].sel(prompt_set=names, branch=br)
            dims = ["prompt_set", "branch"]
        else:
            require_per_prompt(tree, site, stat)
            sel = tree[site][stat].isel(prompt=idx).sel(branch=br).astype("float64")
            dims = ["prompt", "branch"]
        if steps is not None and "step" in sel.dims:
            sel = sel.isel(step=steps)
        totals[site] = sel.sum(dims, skipna=False)
    computed = dict(zip(totals, _compute(list(totals.values()))))
    for site, total in computed.items():
        if np.isnan(total.values).any():  # a missing chunk reads as the fill value, NaN: never a silent mask
            src = "its per-set reductions (rebuild them: `workbench reduce STORE`)" if red is not None else "its raw statistics"
            raise StoreError(
                f"the store's sums for {site} hold NaN: {src} are damaged or incomplete; `workbench info --check STORE` lists the chunks"
            )
    out = {site: xr.Dataset({"norm": np.sqrt(total).astype("float32")}) for site, total in computed.items()}
    result = xr.DataTree.from_dict(out)
    result.attrs.update(prompt_set=str(prompt_set), normalisation=normalisation, branch=",".join(br))
    return result


def require_per_prompt(tree: xr.DataTree, site: str, stat: str) -> None:
    """A clear error where per-prompt statistics are needed and the store keeps none."""
    if stat not in tree[site]:
        sums = tree.attrs.get("keep") == "sums"
        raise StoreError(
            f"the store keeps no per-prompt {stat} of {site}: "
            + ("it was recorded with --sums-only and is not complete yet (its per-set sums appear when every prompt is "
               "recorded: run the same record command again)" if sums else "it is incomplete or damaged (`workbench info --check STORE`)")
        )  # fmt: skip


def _compute(arrays: list[xr.DataArray]) -> list[xr.DataArray]:
    """Every site's sum in one dask compute (shared reads, one scheduler pass), not one per site;
    sums of the reductions (lazily indexed, no dask) are read by a few threads at once, since on
    object storage each read is a round trip."""
    from concurrent.futures import ThreadPoolExecutor

    import dask

    arrays = list(dask.compute(*arrays))
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda a: a.load(), arrays))
