"""One neuron at a time, from a recording store: which prompts drive it most (``top_prompts``) and
its Wanda score step by step for a target and a reference set, with the steps where ConceptPrune
calls it skilled (``neuron_profile``). Nothing new is recorded: both read the per-prompt, per-step
statistics every store keeps.

A prompt's activation of neuron j over a step window W is ``sqrt(sum over t in W and tokens of
h_j^2)`` (the cond branch by default): the per-prompt form of the norm in ``norms`` (eq. 3).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..store import StoreError
from .masks import step_mask
from .norms import branches_of, norms, prompt_index
from .weights import abs_weight


def _site(tree: xr.DataTree, site: str) -> xr.Dataset:
    if site not in tree.wb.sites:
        raise ValueError(f"site {site!r} is not in this store: it holds {list(tree.attrs['sites'])} (`workbench info STORE`)")
    return tree[site].to_dataset()


def prompt_activation(tree: xr.DataTree, site: str, neurons=None, steps=None, branch: str = "cond",
                      prompt_set: str | list[str] | None = None) -> xr.DataArray:  # fmt: skip
    """(prompt, neuron) activation of every recorded prompt (or of ``prompt_set``'s) at ``site``:
    sqrt of its sum of squares over the ``steps`` (a slice or list of step indices; all by default)."""
    ds = _site(tree, site)
    if "sumsq" not in ds and tree.attrs.get("keep") == "sums":
        raise ValueError(f"this store keeps per-set sums only (--sums-only): per-prompt activations of {site} need a store "
                         "recorded without --sums-only")  # fmt: skip
    if "sumsq" not in ds:
        raise ValueError(f"this store has no 'sumsq' statistic at {site}: record again with --stats sumsq,...")
    x = ds["sumsq"].sel(branch=branches_of(tree, branch))
    idx = np.arange(x.sizes["neuron"]) if neurons is None else np.atleast_1d(np.asarray(neurons, dtype=int))
    x = x.isel(neuron=idx)
    if steps is not None and "step" in x.dims:
        x = x.isel(step=steps)
    if prompt_set is not None:
        x = x.isel(prompt=prompt_index(tree, prompt_set))
    done = tree["done"].sel(prompt=x["prompt"]).values.astype(bool)
    x = x.isel(prompt=np.flatnonzero(done))
    total = x.astype("float64").sum([d for d in ("branch", "step") if d in x.dims]).assign_coords(neuron=idx).load()
    if np.isnan(total.values).any():
        raise StoreError(
            f"the store's statistics for {site} hold NaN: damaged or incomplete; `workbench info --check STORE` lists the chunks"
        )
    return np.sqrt(total).rename("activation")


def top_prompts(tree: xr.DataTree, site: str, neurons, k: int = 5, steps=None, branch: str = "cond",
                prompt_set: str | list[str] | None = None) -> xr.Dataset:  # fmt: skip
    """For each of ``neurons``, the ``k`` prompts that drive it most: a Dataset over (neuron, rank)
    with the store's ``prompt`` index, its ``text``, ``set`` and ``seed``, and the ``activation``."""
    act = prompt_activation(tree, site, neurons, steps, branch, prompt_set)
    k = min(k, act.sizes["prompt"])
    if k < 1:
        raise ValueError("no finished prompts to rank: record some first (`workbench record`)")
    a = act.transpose("neuron", "prompt").values
    order = np.argsort(-a, axis=1, kind="stable")[:, :k]
    prompts = act["prompt"].values[order]
    coord = {"neuron": act["neuron"].values, "rank": np.arange(1, k + 1)}

    def field(name: str) -> xr.DataArray:
        return xr.DataArray(
            tree[name].sel(prompt=prompts.ravel()).values.reshape(prompts.shape), coords=coord, dims=("neuron", "rank")
        )

    return xr.Dataset({"prompt": (("neuron", "rank"), prompts), "text": field("text").astype(object),
                       "set": field("set").astype(object), "seed": field("seed"),
                       "activation": (("neuron", "rank"), np.take_along_axis(a, order, 1))}, coords=coord,
                      attrs={"site": site, "branch": branch})  # fmt: skip


def neuron_profile(tree: xr.DataTree, weights: dict, site: str, neurons, target: str | list[str], reference: str | list[str],
                   k: float = 2.0, normalisation: str = "wanda") -> xr.Dataset:  # fmt: skip
    """Per step, for each of ``neurons``: the Wanda score of its column (n_t[j] * mean_i |W_ij|) on the
    target and the reference set, and ``skilled``, whether ConceptPrune's skilled mask at ``k`` holds
    any entry of the column at that step (the mask before the union over steps)."""
    neurons = np.atleast_1d(np.asarray(neurons, dtype=int))
    nt = norms(tree, target, normalisation, sites=[site])[site]["norm"]
    nr = norms(tree, reference, normalisation, sites=[site])[site]["norm"]
    if nt.dims != ("step", "neuron"):
        raise ValueError(f"{site} has no steps (a text-encoder site): its profile is one number, read norms() instead")
    w = abs_weight(weights, site, nt.sizes["neuron"])
    col = w.mean(0)
    nonzero = w > 0
    skilled = np.stack([step_mask(w, nt.values[t], nr.values[t], k, nonzero=nonzero)[:, neurons].any(0)
                        for t in range(nt.sizes["step"])])  # fmt: skip
    coords = {"step": nt["step"].values if "step" in nt.coords else np.arange(nt.sizes["step"]), "neuron": neurons}
    return xr.Dataset({"target": (("step", "neuron"), nt.values[:, neurons] * col[neurons]),
                       "reference": (("step", "neuron"), nr.values[:, neurons] * col[neurons]),
                       "skilled": (("step", "neuron"), skilled)}, coords=coords,
                      attrs={"site": site, "k": k, "target_set": str(target), "reference_set": str(reference),
                             "normalisation": normalisation})  # fmt: skip
