"""The recording store: one Zarr v3 store per recording, read back as an xarray DataTree.

Layout (docs/store.md has the full schema)::

    /                  attrs: workbench_schema, provenance, sites, stats, complete
      prompt (prompt)  int index;  text, set, seed, done (prompt)
      step (step)      UNet call index;  timestep (step)
      branch (branch)  'uncond', 'cond'
    /<site name>/      one group a site, attrs: family, component, width, tokens
      sumsq, sumsq_unit[, sum, absmax]  float32 (prompt, branch, step, neuron)  [text sites: no step]
    /reductions/       per prompt-set sums of each statistic (store.reductions), written when complete
    /maps[-<name>]/    opt-in activation maps and images of chosen neurons (store.maps; open_maps)
    /samples/          opt-in per-token activations at chosen sites and calls (store.samples; open_samples)

Writers fill one prompt chunk at a time (region writes) and mark those prompts ``done`` last, so
a killed recording resumes where it stopped, and the ``done`` flags tell a half-written store.
"""

from __future__ import annotations

from .._lazy import lazy

#: public name -> submodule; loaded on first use (PEP 562), so the analysis, which needs only
#: ``StoreError``, does not pay for zarr until it opens a store
_EXPORTS = {
    **dict.fromkeys(("SCHEMA", "StoreError", "consolidate", "jsonable"), "core"),
    **dict.fromkeys(("WriterLock", "lock_path"), "lock"),
    **dict.fromkeys(("check_store", "describe", "open_store", "provenance_of"), "reader"),
    "reduce_store": "reductions",
    **dict.fromkeys(("MapWriter", "open_maps", "map_groups"), "maps"),
    **dict.fromkeys(("SampleWriter", "open_samples"), "samples"),
    "push": "transfer",
    "StoreWriter": "writer",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy(__name__, globals(), {n: (f".{m}", n) for n, m in _EXPORTS.items()})
