"""Sweeps over k and t_hat computed together: one top-k per row and step serves every k
(top-k indices come sorted, so the first n_k of the largest k are the top n_k), and a cumulative
OR over steps serves every t_hat. Masks are kept bit-packed along the neuron axis."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from .masks import KINDS, check_k, n_keep
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
    if kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r}: use {KINDS}")
    ks = sorted(check_k(k) for k in ks)
    t_hats = sorted(int(t) for t in t_hats)
    n_steps = tree.sizes["step"]
    step_window(n_steps, t_hats[-1])  # validates the largest t_hat
    if t_hats[0] < 1:
        raise ValueError(f"t_hat={t_hats[0]} is out of range: use 1..{n_steps}")
    sites = sites or site_names(tree)
    nt = norms(tree, target, normalisation, branch, sites, steps=slice(0, t_hats[-1]))
    nr = norms(tree, reference, normalisation, branch, sites, steps=slice(0, t_hats[-1]))
    out = {}
    for site in sites:
        a, b = nt[site]["norm"], nr[site]["norm"]
        width = a.sizes["neuron"]
        w = abs_weight(weights, site, width)
        keeps = [n_keep(width, k, at_least_one=normalisation != "authors") for k in ks]
        if "step" in a.dims:
            a_np, b_np = torch.from_numpy(a.values), torch.from_numpy(b.values)
        else:
            a_np, b_np = torch.from_numpy(a.values)[None], torch.from_numpy(b.values)[None]
        acc = torch.zeros((len(ks), *w.shape), dtype=torch.bool)
        packed = np.zeros((len(ks), len(t_hats), w.shape[0], (width + 7) // 8), dtype=np.uint8)
        counts = np.zeros((len(ks), len(t_hats)), dtype=np.int64)
        nz = w > 0
        for t in range(a_np.shape[0]):
            score = w * a_np[t][None, :]
            top = torch.topk(score, keeps[-1], dim=1, sorted=True).indices  # the largest k; smaller ones are its prefixes
            col = (a_np[t] > b_np[t]) if kind == "skilled" else (a_np[t] < b_np[t])
            valid = col[None, :] & nz
            for i, n in enumerate(keeps):
                m = torch.zeros_like(nz).scatter_(1, top[:, :n], True)
                acc[i] |= m & valid
            for j, th in enumerate(t_hats):
                if th == t + 1 or (a_np.shape[0] == 1 and t == 0):
                    for i in range(len(ks)):
                        packed[i, j] = np.packbits(acc[i].numpy(), axis=1)
                        counts[i, j] = int(acc[i].sum())
        if a_np.shape[0] == 1:  # text sites: no steps, every t_hat gives the same mask
            packed[:] = packed[:, :1]
            counts[:] = counts[:, :1]
        out[site] = xr.Dataset(
            {"packed": (("k", "t_hat", "row", "byte"), packed), "count": (("k", "t_hat"), counts)},
            coords={"k": ks, "t_hat": t_hats},
            attrs={"width": width},
        )
    result = xr.DataTree.from_dict(out)
    result.attrs.update(target=str(target), reference=str(reference), kind=kind, normalisation=normalisation, sites=list(sites))
    return result


def unpack(result: xr.DataTree, site: str, k: float, t_hat: int) -> np.ndarray:
    """One (row, neuron) bool mask out of a sweep."""
    ds = result[site]
    bits = ds["packed"].sel(k=float(k), t_hat=int(t_hat)).values
    return np.unpackbits(bits, axis=1, count=int(ds.attrs["width"])).astype(bool)


def sweep_density(result: xr.DataTree) -> xr.DataArray:
    """Share of all swept sites' weights pruned, for every (k, t_hat)."""
    total = sum(result[s]["packed"].sizes["row"] * result[s].attrs["width"] for s in result.attrs["sites"])
    count = sum(result[s]["count"] for s in result.attrs["sites"])
    return (count / total).rename("density")
