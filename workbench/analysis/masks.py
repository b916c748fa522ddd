"""Wanda scores and skilled / unskilled neuron masks (ConceptPrune, section 4.3).

For a site with weight W (d x d') and norms n*_t (target prompts P*) and n_t (reference P):
  S*_t = |W| * n*_t (broadcast over rows), S_t = |W| * n_t
  I_t  = top-k% of each row of S*_t            (k% of d' entries per output row)
  skilled M_t = I_t & (S*_t > S_t);  unskilled = I_t & (S*_t < S_t)
  M = OR of M_t over a step window (the paper: the first t_hat UNet calls).
Since S*_t > S_t  <=>  W != 0 and n*_t > n_t, the comparison is per column.
"""

from __future__ import annotations

import math

import torch
import xarray as xr

from .norms import norms, prompt_index, site_names
from .weights import abs_weight
from .windows import step_window

KINDS = ("skilled", "unskilled")


def check_k(k: float) -> float:
    if not (0 < float(k) <= 100):
        raise ValueError(f"k={k} is out of range: give the share of each row to keep as a percentage in (0, 100], e.g. 2 for 2%")
    return float(k)


def n_keep(width: int, k: float, at_least_one: bool = True) -> int:
    """Entries kept per row at k percent: floor(width * k / 100), at least 1 by default. The
    authors' code keeps ``int(k / 100 * width)``, which is 0 for small k on narrow layers (never at
    SD widths: 1% of 1280 is 12); ``at_least_one=False`` follows it (the ``authors`` mode does)."""
    n = int(math.floor(width * check_k(k) / 100 + 1e-9))
    return max(1, n) if at_least_one else n


def step_mask(
    w_abs: torch.Tensor, n_target: torch.Tensor, n_ref: torch.Tensor, k: float, kind: str = "skilled", at_least_one: bool = True
) -> torch.Tensor:
    """M_t (d x d' bool) for one step from |W| and the two norm vectors."""
    if kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r}: use {KINDS}")
    score = w_abs * n_target[None, :]
    top = torch.topk(score, n_keep(w_abs.shape[1], k, at_least_one), dim=1, sorted=False).indices
    mask = torch.zeros_like(w_abs, dtype=torch.bool).scatter_(1, top, True)
    col = (n_target > n_ref) if kind == "skilled" else (n_target < n_ref)
    return mask & col[None, :] & (w_abs > 0)


def concept_masks(
    tree: xr.DataTree,
    weights: dict,
    target: str | list[str],
    reference: str | list[str],
    k: float = 2.0,
    t_hat: int | None = 10,
    kind: str = "skilled",
    normalisation: str = "wanda",
    window=None,
    branch: str | None = None,
    sites: list[str] | None = None,
) -> xr.DataTree:
    """Aggregated masks, one group per site with ``mask`` (row, neuron) bool, shaped like W."""
    check_k(k)
    sites = sites or site_names(tree)
    prompt_index(tree, target), prompt_index(tree, reference)  # an unknown set is named before a bad window
    steps = step_window(tree.sizes["step"], t_hat, window)
    nt = norms(tree, target, normalisation, branch, sites, steps=steps)  # reads only the window's steps
    nr = norms(tree, reference, normalisation, branch, sites, steps=steps)
    out = {}
    for site in sites:
        a, b = nt[site]["norm"], nr[site]["norm"]
        w = abs_weight(weights, site, a.sizes["neuron"])
        if "step" in a.dims:
            a_np, b_np = torch.from_numpy(a.values), torch.from_numpy(b.values)
        else:  # text sites run once per prompt: one "step"
            a_np, b_np = torch.from_numpy(a.values)[None], torch.from_numpy(b.values)[None]
        m = torch.zeros_like(w, dtype=torch.bool)
        for i in range(a_np.shape[0]):
            m |= step_mask(w, a_np[i], b_np[i], k, kind, at_least_one=normalisation != "authors")
        out[site] = xr.Dataset({"mask": (("row", "neuron"), m.numpy())})
    result = xr.DataTree.from_dict(out)
    result.attrs.update(
        target=str(target), reference=str(reference), k=float(k), t_hat=-1 if t_hat is None else int(t_hat), kind=kind,
        normalisation=normalisation, steps=steps, sites=list(sites), store_weights_hash=str(tree.attrs["provenance"].get("weights_hash")),
    )  # fmt: skip
    return result


def union(*masks: xr.DataTree) -> xr.DataTree:
    """OR of several concepts' masks (paper A.5): a site absent from one counts as all-False."""
    if not masks:
        raise ValueError("union needs at least one mask")
    sites = list(dict.fromkeys(s for m in masks for s in m.attrs["sites"]))
    out = {}
    for s in sites:
        arrs = [m[s]["mask"] for m in masks if s in m.children]
        acc = arrs[0]
        for a in arrs[1:]:
            acc = acc | a
        out[s] = xr.Dataset({"mask": acc})
    result = xr.DataTree.from_dict(out)
    result.attrs.update(masks[0].attrs)
    result.attrs.update(target=" | ".join(str(m.attrs.get("target")) for m in masks), sites=sites, union_of=len(masks))
    return result
