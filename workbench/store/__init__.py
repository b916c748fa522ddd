"""The recording store: one Zarr v3 store per recording, read back as an xarray DataTree.

Layout (docs/store.md has the full schema)::

    /                  attrs: workbench_schema, provenance, sites, stats, complete
      prompt (prompt)  int index;  text, set, seed, done (prompt)
      step (step)      UNet call index;  timestep (step)
      branch (branch)  'uncond', 'cond'
    /<site name>/      one group a site, attrs: family, component, width, tokens
      sumsq, sumsq_unit[, sum, absmax]  float32 (prompt, branch, step, neuron)  [text sites: no step]
    /reductions/       per prompt-set sums of each statistic (store.reductions), written when complete

Writers fill one prompt chunk at a time (region writes) and mark those prompts ``done`` last, so
a killed recording resumes where it stopped, and the ``done`` flags tell a half-written store.
"""

from .batch import Recording
from .core import SCHEMA, StoreError, consolidate, jsonable
from .lock import WriterLock, lock_path
from .reader import check_store, describe, open_store, provenance_of
from .reductions import reduce_store
from .transfer import push
from .writer import StoreWriter

__all__ = [
    "SCHEMA",
    "Recording",
    "StoreError",
    "StoreWriter",
    "WriterLock",
    "lock_path",
    "check_store",
    "consolidate",
    "describe",
    "jsonable",
    "open_store",
    "provenance_of",
    "push",
    "reduce_store",
]
