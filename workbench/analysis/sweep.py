"""Sweeps over k and t_hat computed together: one partition per row and step ranks every k (it
places each k's threshold at once: ``masks.top_entries``), and a cumulative OR over steps serves
every t_hat. Masks are kept bit-packed along the neuron axis; sites run on a thread each."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .masks import check_k, check_kind, columns, n_keep, per_site, stepped, top_entries
from .norms import norms, site_names
from .weights import abs_weight
from .windows import step_window


def sweep(
    tree: xr.DataTree,
    weights: dict,
    target: str | list[str],
    reference: str | list[str],
    ks=(0.5, 1, 2, 5, 10),
    t_hats=(1, 2, 3, 5, 10),
    kind: str = "skilled",
    normalisation: str = "wanda",
    branch: str | None = None,
    sites: list[str] | None = None,
) -> xr.DataTree:
    """Per site: ``packed`` (k, t_hat, row, byte) uint8 masks (np.packbits over neurons) and
    ``count`` (k, t_hat) of pruned entries; ``unpack(result, site, k, t_hat)`` gives one mask."""
    check_kind(kind)  # named before any work
    ks = sorted(check_k(k) for k in ks)
    t_hats = sorted(int(t) for t in t_hats)
    n_steps = tree.sizes["step"]
    step_window(n_steps, t_hats[-1])  # validates the largest t_hat
    if t_hats[0] < 1:
        raise ValueError(f"t_hat={t_hats[0]} is out of range: use 1..{n_steps}")
    sites = sites or site_names(tree)
    nt = norms(tree, target, normalisation, branch, sites, steps=slice(0, t_hats[-1]))
    nr = norms(tree, reference, normalisation, branch, sites, steps=slice(0, t_hats[-1]))

    def one(site: str) -> xr.Dataset:
        a, b = stepped(nt[site]["norm"]), stepped(nr[site]["norm"])
        width = a.shape[1]
        w = abs_weight(weights, site, width)
        keeps = [n_keep(width, k, at_least_one=normalisation != "authors") for k in ks]
        acc = np.zeros((len(ks), *w.shape), dtype=bool)
        packed = np.zeros((len(ks), len(t_hats), w.shape[0], (width + 7) // 8), dtype=np.uint8)
        counts = np.zeros((len(ks), len(t_hats)), dtype=np.int64)
        nz = w > 0
        for t in range(a.shape[0]):
            valid = columns(a[t], b[t], kind)[None, :] & nz
            for i, top in enumerate(top_entries(w, a[t], keeps)):
                top &= valid
                acc[i] |= top
            for j, th in enumerate(t_hats):
                if th == t + 1 or (a.shape[0] == 1 and t == 0):
                    for i in range(len(ks)):
                        packed[i, j] = np.packbits(acc[i], axis=1)
                        counts[i, j] = np.count_nonzero(acc[i])
        if a.shape[0] == 1:  # text sites: no steps, every t_hat gives the same mask
            packed[:] = packed[:, :1]
            counts[:] = counts[:, :1]
        return xr.Dataset(
            {"packed": (("k", "t_hat", "row", "byte"), packed), "count": (("k", "t_hat"), counts)},
            coords={"k": ks, "t_hat": t_hats},
            attrs={"width": width},
        )

    result = xr.DataTree.from_dict(per_site(one, list(sites)))
    result.attrs.update(target=str(target), reference=str(reference), kind=kind, normalisation=normalisation, sites=list(sites))
    return result


def unpack(result: xr.DataTree, site: str, k: float, t_hat: int) -> np.ndarray:
    """One (row, neuron) bool mask out of a sweep."""
    ds = result[site]
    bits = ds["packed"].sel(k=float(k), t_hat=int(t_hat)).values
    return np.unpackbits(bits, axis=1, count=int(ds.attrs["width"])).astype(bool)


def sweep_density(result: xr.DataTree) -> xr.DataArray:
    """Share of all swept sites' weights pruned, for every (k, t_hat)."""
    total = sum(result[s]["packed"].sizes["row"] * result[s].attrs["width"] for s in result.wb.sites)
    count = sum(result[s]["count"] for s in result.wb.sites)
    return (count / total).rename("density")
