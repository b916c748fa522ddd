"""Wanda scores and skilled / unskilled neuron masks (ConceptPrune, section 4.3).

For a site with weight W (d x d') and norms n*_t (target prompts P*) and n_t (reference P):
  S*_t = |W| * n*_t (broadcast over rows), S_t = |W| * n_t
  I_t  = top-k% of each row of S*_t            (k% of d' entries per output row)
  skilled M_t = I_t & (S*_t > S_t);  unskilled = I_t & (S*_t < S_t)
  M = OR of M_t over a step window (the paper: the first t_hat UNet calls).
Since S*_t > S_t  <=>  W != 0 and n*_t > n_t, the comparison is per column.

Top-k without a sort, in float32, decided as float64 would: each row's n-th and (n+1)-th largest
float32 scores come from one ``np.partition`` (linear time); where they are further apart than
float32's rounding can blur (relative 1e-6), the n entries at or above the n-th are the top n of
the float64 scores too, and a row where they are not (rare: a near-tie at the boundary) is ranked
again in float64. Tie rule: entries whose float64 scores tie with the n-th largest are all kept
(the row then holds more than n); real weights and norms tie with probability zero, and zero
scores are never kept (they fail ``W != 0`` or ``n*_t > n_t``). Sites run on a thread each
(numpy releases the GIL in these loops).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

from .norms import norms, prompt_index, site_names
from .weights import abs_weight
from .windows import step_window

KINDS = ("skilled", "unskilled")


def check_k(k: float) -> float:
    if not (0 < float(k) <= 100):
        raise ValueError(f"k={k} is out of range: give the share of each row to prune as a percentage in (0, 100], e.g. 2 for 2%")
    return float(k)


def n_keep(width: int, k: float, at_least_one: bool = True) -> int:
    """Entries kept per row at k percent: floor(width * k / 100), at least 1 by default. The
    authors' code keeps ``int(k / 100 * width)``, which is 0 for small k on narrow layers (never at
    SD widths: 1% of 1280 is 12); ``at_least_one=False`` follows it (the ``authors`` mode does)."""
    n = int(math.floor(width * check_k(k) / 100 + 1e-9))
    return max(1, n) if at_least_one else n


#: relative gap between a row's n-th and (n+1)-th float32 scores beyond which float64 ranks alike
#: (float32 products and the norms' cast err by < 2.5e-7 relative each way)
BAND = 1e-6


def top_entries(w_abs: np.ndarray, n_target: np.ndarray, keeps: list[int]) -> list[np.ndarray]:
    """For each n in ``keeps`` (0 <= n <= width), the (rows, width) bool of each row's n largest
    scores ``w_abs * n_target`` (float64 ranking, ties at the n-th kept).

    One partition of the scores at the largest n; each smaller n partitions only that block of the
    largest; the (n+1)-th largest is the maximum of what lies below the n-th."""
    width = w_abs.shape[1]
    n64 = np.asarray(n_target, dtype=np.float64)
    score = w_abs * n64.astype(np.float32)[None, :]
    inner = [n for n in keeps if 0 < n < width]
    block = below = None
    if inner:
        big = max(inner)
        part = np.partition(score, width - big, axis=1)
        block, below = part[:, width - big :], part[:, : width - big].max(axis=1)
    out = []
    for n in keeps:
        if n not in inner:
            out.append(np.full(score.shape, n > 0))
            continue
        if n == block.shape[1]:
            nth, next_ = block[:, 0], below
        else:
            sub = np.partition(block, block.shape[1] - n, axis=1)
            nth, next_ = sub[:, block.shape[1] - n], sub[:, : block.shape[1] - n].max(axis=1)
        top = score >= nth[:, None]
        unsure = np.flatnonzero((next_ >= nth * np.float32(1 - BAND)) & (nth > 0))  # a near-tie at the boundary
        if unsure.size:
            exact = w_abs[unsure].astype(np.float64) * n64[None, :]
            top[unsure] = exact >= np.partition(exact, width - n, axis=1)[:, width - n][:, None]
        out.append(top)
    return out


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r}: use {KINDS}")
    return kind


def columns(n_target: np.ndarray, n_ref: np.ndarray, kind: str) -> np.ndarray:
    """The columns where S*_t > S_t (skilled) or S*_t < S_t (unskilled), for W != 0."""
    check_kind(kind)
    return (n_target > n_ref) if kind == "skilled" else (n_target < n_ref)


def step_mask(w_abs: np.ndarray, n_target: np.ndarray, n_ref: np.ndarray, k: float, kind: str = "skilled",
              at_least_one: bool = True, nonzero: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """M_t (d x d' bool) for one step from |W| (float32) and the two norm vectors; ``nonzero``
    (``w_abs > 0``) can be passed in when the same weight serves many steps."""
    col = columns(n_target, n_ref, kind)
    top = top_entries(w_abs, n_target, [n_keep(w_abs.shape[1], k, at_least_one)])[0]
    top &= col[None, :]
    top &= (w_abs > 0) if nonzero is None else nonzero
    return top


def per_site(fn, sites: list[str]) -> dict:
    """``{site: fn(site)}`` with the sites on a pool of threads (one per core)."""
    workers = min(len(sites), os.cpu_count() or 1)
    if workers <= 1:
        return {s: fn(s) for s in sites}
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(sites, pool.map(fn, sites)))


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
    check_kind(kind)  # named before any work

    def one(site: str) -> xr.Dataset:
        a, b = stepped(nt[site]["norm"]), stepped(nr[site]["norm"])
        w = abs_weight(weights, site, a.shape[1])
        nonzero = w > 0
        m = np.zeros(w.shape, dtype=bool)
        for i in range(a.shape[0]):
            m |= step_mask(w, a[i], b[i], k, kind, at_least_one=normalisation != "authors", nonzero=nonzero)
        return xr.Dataset({"mask": (("row", "neuron"), m)})

    result = xr.DataTree.from_dict(per_site(one, list(sites)))
    result.attrs.update(
        target=str(target), reference=str(reference), k=float(k), t_hat=-1 if t_hat is None else int(t_hat), kind=kind,
        normalisation=normalisation, steps=steps, sites=list(sites), store_weights_hash=str(tree.wb.provenance.get("weights_hash")),
    )  # fmt: skip
    return result


def stepped(norm: xr.DataArray) -> np.ndarray:
    """(step, neuron) values of a site's norms; text sites, which run once per prompt, as one step."""
    return norm.values if "step" in norm.dims else norm.values[None]


def union(*masks: xr.DataTree) -> xr.DataTree:
    """OR of several concepts' masks (paper A.5): a site absent from one counts as all-False."""
    if not masks:
        raise ValueError("union needs at least one mask")
    sites = list(dict.fromkeys(s for m in masks for s in m.wb.sites))
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
