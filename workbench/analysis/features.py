"""Features beside neurons: an SAE's features read from a store's token samples, scored, masked,
compared and mapped as the neurons are. Pure functions (numpy, xarray): the SAE is its arrays
(``store.saes``), the samples the store's (``store.samples``).

A unit's *activation on a prompt* at a call is its mean over the prompt's sampled tokens: for a
feature, the SAE's encoding of each token; for a neuron (or a residual dimension), the sampled
input itself. Both come from the same tokens, so a feature and a neuron are compared on equal data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.stats import rankdata

from ..store.saes import SAE


def _prompts(samples: xr.DataTree) -> dict:
    return {c: ("prompt", samples[c].values) for c in ("text", "set", "seed")}


def unit_activations(samples: xr.DataTree, site: str, sae: SAE | None = None) -> xr.DataArray:
    """(prompt, step, feature) mean feature activations over each prompt's sampled tokens, or
    without an SAE (prompt, step, neuron): the site's own units. Read one prompt at a time."""
    x = samples[site]["x"]
    rows = []
    for i in range(x.sizes["sample_prompt"]):
        v = np.asarray(x[i].values, dtype=np.float32)  # (step, token, width)
        rows.append((sae.encode(v) if sae is not None else v).mean(1))
    dim = "feature" if sae is not None else "neuron"
    data = np.stack(rows) if rows else np.zeros((0, x.sizes["sample_step"], sae.d_sae if sae else x.sizes["neuron"]), np.float32)
    return xr.DataArray(data, dims=("prompt", "step", dim), coords={"step": samples[site]["sample_step"].values, **_prompts(samples)},
                        name="activation", attrs={"site": site})  # fmt: skip


def _sets(acts: xr.DataArray, sets: str | Sequence[str]) -> np.ndarray:
    want = [sets] if isinstance(sets, str) else list(sets)
    rows = np.isin(acts["set"].values.astype(str), want)
    if not rows.any():
        raise ValueError(
            f"no prompt of the sets {want}: the activations hold the sets {sorted(set(acts['set'].values.astype(str)))}"
        )
    return rows


def feature_scores(acts: xr.DataArray, target: str | Sequence[str], others: str | Sequence[str] | None = None,
                   eps: float = 1e-8) -> xr.DataArray:  # fmt: skip
    """SAeUron's score per call and unit: the unit's share of the total mean activation on the
    target's prompts minus its share on the others' (every other set by default)."""
    t = _sets(acts, target)
    o = ~t if others is None else _sets(acts, others)
    mean_t, mean_o = acts[t].mean("prompt"), acts[o].mean("prompt")
    dim = acts.dims[-1]
    out = mean_t / (mean_t.sum(dim) + eps) - mean_o / (mean_o.sum(dim) + eps)
    return out.rename("score").assign_attrs(acts.attrs, target=str(target))


def top_units(scores: xr.DataArray, n: int) -> xr.DataArray:
    """A bool mask (step, unit): each call's ``n`` highest-scoring units."""
    dim = scores.dims[-1]
    if not 1 <= n <= scores.sizes[dim]:
        raise ValueError(f"n must lie in [1, {scores.sizes[dim]}] (the {dim}s), not {n}")
    v = scores.transpose(..., dim).values
    top = np.argsort(-v, axis=-1, kind="stable")[..., :n]  # ties: the lower index first
    mask = np.zeros(v.shape, bool)
    np.put_along_axis(mask, top, True, -1)
    return xr.DataArray(mask, dims=scores.transpose(..., dim).dims, coords=scores.coords, name="mask", attrs=scores.attrs)


def auroc(acts: xr.DataArray, labels, steps: Sequence[int] | None = None) -> xr.DataArray:
    """Each unit's AUROC (unit) for telling the prompts with ``labels`` True from the rest by its
    activation averaged over calls ``steps`` (all: None); 0.5 is chance, 1 a perfect detector
    (Mann-Whitney U over ranks, ties halved)."""
    y = np.asarray(labels, dtype=bool)
    if y.shape != (acts.sizes["prompt"],):
        raise ValueError(f"labels must have one value a prompt ({acts.sizes['prompt']}), not shape {y.shape}")
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        raise ValueError("labels must mark some prompts True and some False for an AUROC")
    a = acts if steps is None else acts.sel(step=list(steps))
    v = a.mean("step").values
    r = rankdata(v, axis=0)
    auc = (r[y].sum(0) - pos * (pos + 1) / 2) / (pos * neg)
    dim = acts.dims[-1]
    return xr.DataArray(auc, dims=(dim,), name="auroc", attrs={**acts.attrs, "steps": list(a["step"].values)})


def firing_rate(samples: xr.DataTree, site: str, sae: SAE) -> xr.DataArray:
    """(feature): the share of all sampled tokens (every prompt and call) on which each feature fires."""
    x = samples[site]["x"]
    fired, tokens = np.zeros(sae.d_sae), 0
    for i in range(x.sizes["sample_prompt"]):
        z = sae.encode(np.asarray(x[i].values, dtype=np.float32).reshape(-1, sae.d_in))
        fired += (z > 0).sum(0)
        tokens += z.shape[0]
    return xr.DataArray(fired / max(tokens, 1), dims=("feature",), name="firing_rate", attrs={"site": site})


def feature_map(samples: xr.DataTree, site: str, sae: SAE, prompt: int, step: int, feature: int) -> xr.DataArray:
    """A feature's activation over a prompt's token grid at one call (y, x): NaN on tokens not
    sampled. The grid is square (the site's tokens are a square latent's)."""
    x = samples[site]
    at = list(x["sample_step"].values).index(step) if step in x["sample_step"].values else None
    if at is None:
        raise ValueError(f"call {step} was not sampled: the samples hold calls {list(x['sample_step'].values)}")
    v = np.asarray(x["x"][prompt, at].values, dtype=np.float32)
    pos = np.asarray(x["token"][prompt, at].values)
    tokens = int(samples.attrs["site_tokens"][site])
    n = int(np.sqrt(tokens))
    if n * n != tokens:
        raise ValueError(f"{site} has {tokens} tokens a call: not a square grid, so it has no map")
    grid = np.full(n * n, np.nan, np.float32)
    grid[pos] = sae.encode(v)[:, feature]
    return xr.DataArray(
        grid.reshape(n, n), dims=("y", "x"), name="feature_map", attrs={"site": site, "feature": feature, "step": step}
    )


def unit_overlap(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """Jaccard overlap per call of two concepts' unit masks (step, unit)."""
    inter = (a & b).sum(a.dims[-1])
    union = (a | b).sum(a.dims[-1])
    return (inter / union.where(union > 0)).rename("jaccard")


def top_prompts_of(acts: xr.DataArray, unit: int, n: int = 5, steps: Sequence[int] | None = None) -> xr.DataArray:
    """The ``n`` prompts on which a unit is most active (averaged over ``steps``), strongest first."""
    a = acts if steps is None else acts.sel(step=list(steps))
    v = a.isel({acts.dims[-1]: unit}).mean("step")
    return v.sortby(v, ascending=False).isel(prompt=slice(0, n))
