"""Densities of masks (paper Fig. 3 right) and distributions of neuron norms (Fig. 4b-d)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .masks import per_site, step_mask
from .norms import norms, site_names
from .weights import abs_weight


def density(masks: xr.DataTree, total_params: int | None = None) -> xr.Dataset:
    """Per site the pruned share of its weight (``density``) and entry count; ``overall`` over all
    masked sites, and ``of_model`` as a share of ``total_params`` (e.g. all UNet parameters). The
    masks' target, reference, k, t_hat and kind travel in ``attrs`` (figure titles read them)."""
    sites = list(masks.wb.sites)
    counts = np.array([int(masks[s]["mask"].sum()) for s in sites])
    sizes = np.array([masks[s]["mask"].size for s in sites])
    ds = xr.Dataset(
        {"count": ("site", counts), "size": ("site", sizes), "density": ("site", counts / sizes)},
        coords={"site": sites},
    )
    ds["overall"] = counts.sum() / sizes.sum()
    if total_params:
        ds["of_model"] = counts.sum() / total_params
    ds.attrs.update({k: masks.attrs[k] for k in ("target", "reference", "k", "t_hat", "kind") if k in masks.attrs})
    return ds


def density_per_step(tree: xr.DataTree, weights: dict, target, reference, k: float = 2.0, kind: str = "skilled",
                     normalisation: str = "wanda", branch: str | None = None, sites: list[str] | None = None) -> xr.DataArray:  # fmt: skip
    """Skilled share of each UNet site's weight at every step: (site, step); ``sites`` limits it."""
    unet = [s for s in site_names(tree) if tree.wb.site_info[s]["component"] == "unet"]  # text sites have no steps
    sites = [s for s in (sites or unet) if s in unet]
    nt = norms(tree, target, normalisation, branch, sites)
    nr = norms(tree, reference, normalisation, branch, sites)

    def one(s: str) -> np.ndarray:
        a, b = nt[s]["norm"].values, nr[s]["norm"].values
        w = abs_weight(weights, s, a.shape[1])
        nonzero = w > 0
        return np.array(
            [step_mask(w, a[t], b[t], k, kind, normalisation != "authors", nonzero).mean() for t in range(a.shape[0])]
        )

    by_site = per_site(one, sites)
    out = np.stack([by_site[s] for s in sites]) if sites else np.zeros((0, tree.sizes["step"]))
    return xr.DataArray(out, dims=("site", "step"), coords={"site": sites, "step": tree["step"].values}, name="density",
                        attrs={"target": str(target), "reference": str(reference), "k": k, "kind": kind})  # fmt: skip


def norm_distribution(tree: xr.DataTree, sets: list[str], family: str = "ffn2", normalisation: str = "wanda",
                      steps=None) -> xr.DataArray:  # fmt: skip
    """Neuron norms of every site of a family, per prompt set: (set, neuron_all) for histograms,
    averaged over ``steps`` (default all)."""
    info = tree.wb.site_info
    sites = [s for s in site_names(tree) if info[s]["family"] == family]
    if not sites:
        raise ValueError(f"this store has no {family!r} sites: it holds {sorted({v['family'] for v in info.values()})}")
    rows = []
    for name in sets:
        nt = norms(tree, name, normalisation, sites=sites)
        vals = []
        for s in sites:
            n = nt[s]["norm"]
            if "step" in n.dims:
                n = n.isel(step=steps if steps is not None else slice(None)).mean("step")
            vals.append(n.values)
        rows.append(np.concatenate(vals))
    return xr.DataArray(np.stack(rows), dims=("set", "neuron_all"), coords={"set": list(sets)}, name="norm",
                        attrs={"family": family, "normalisation": normalisation, "sites": len(sites),
                               "steps": "all" if steps is None else str(steps)})  # fmt: skip
