"""Sums-only stores: per-set sums kept as the recording goes, no per-prompt rows.

A store made with ``record(..., sums_only=True)`` (``--sums-only``) holds the prompts' metadata and
done flags as any store, but no ``<site>/<stat>`` arrays per prompt. Each recorded chunk of prompts
writes, per site and statistic, one block of float64 sums per prompt set into::

    /partials/<site>/<stat>   (chunk, prompt_set, branch, [step,] neuron)   NaN where never written

(zeros for the sets a chunk does not hold, so a block that is missing reads as NaN and is never
mistaken for an empty one), then the chunk's done flags. A kill at any moment leaves a chunk either
done with its blocks written, or not done: a rerun records it again whole and overwrites its blocks.
When every prompt is done, the blocks are summed over chunks into the store's ``/reductions`` (what
masks, sweeps and overlaps read, store.reductions), the fingerprint is written last, and the
partials are removed: a complete sums-only store is the per-set sums, whatever the number of prompts.
Per-prompt analyses (top prompts, a neuron's per-prompt profile) need a raw store.
"""

from __future__ import annotations

import numpy as np
import zarr

from .core import StoreError
from .reductions import GROUP as REDUCTIONS
from .reductions import fingerprint, fresh, remove, set_codes, sums_array

GROUP = "partials"
KEEP = "sums"


def is_sums_only(group: zarr.Group) -> bool:
    return group.attrs.get("keep") == KEEP


def ensure_arrays(group: zarr.Group, rec, chunk: int) -> None:
    """The partial-sum arrays of every site and statistic of a recording, made once (their shapes
    from a real batch: branches, steps, widths)."""
    names, codes = set_codes(group)
    n_chunks = -(-len(codes) // chunk)
    parts = group[GROUP] if GROUP in group else group.create_group(GROUP)
    for site, stats in rec.stats.items():
        g = parts[site] if site in parts else parts.create_group(site)
        for stat, data in stats.items():
            if stat in g:
                continue
            rest = data.shape[1:]
            dims = ["chunk", "prompt_set", "branch", *(["step"] if data.ndim == 4 else []), "neuron"]
            g.create_array(stat, shape=(n_chunks, len(names), *rest), chunks=(1, 1, *rest), dtype="float64",
                           dimension_names=dims, fill_value=float("nan"))  # fmt: skip


def write_chunk(group: zarr.Group, indices: list[int], rec, chunk: int) -> None:
    """One whole chunk's per-set sums (every set's block: zeros where it holds none of the set)."""
    names, codes = set_codes(group)
    c = indices[0] // chunk
    lo, hi = c * chunk, min((c + 1) * chunk, len(codes))
    if list(indices) != list(range(lo, hi)):
        raise StoreError(
            f"a sums-only store records whole chunks: got prompts {indices[0]}-{indices[-1]}, chunk {c} is {lo}-{hi - 1}"
        )
    mine = codes[lo:hi]
    parts = group[GROUP]
    for site, stats in rec.stats.items():
        for stat, data in stats.items():
            acc = np.zeros((len(names), *data.shape[1:]))
            for i, code in enumerate(mine):
                acc[code] += np.asarray(data[i], dtype=np.float64)
            parts[site][stat][c] = acc


def fold(group: zarr.Group) -> None:
    """The partials summed over chunks into the store's reductions (fingerprint last), then removed.
    A block that was never written (NaN) is refused: the store's chunks say which to record again."""
    if GROUP not in group:
        if fresh(group):
            return  # folded before a kill that left nothing else to do
        raise StoreError("this sums-only store has neither its partial sums nor its reductions: record it again into a new store")
    names, _ = set_codes(group)
    remove(group, REDUCTIONS)
    red = group.create_group(REDUCTIONS)
    red.create_array("prompt_set", shape=(len(names),), dtype=str, dimension_names=["prompt_set"], fill_value="")[:] = np.array(
        names, dtype=object
    )
    for site, sg in group[GROUP].groups():
        out = red.create_group(site)
        for stat, parts in sg.arrays():
            total = np.zeros(parts.shape[1:])
            for c in range(parts.shape[0]):
                block = parts[c]
                if np.isnan(block).any():
                    raise StoreError(
                        f"the partial sums of {site}/{stat} lack chunk {c}: record that chunk again (resume the record command)"
                    )
                total += block
            sums_array(out, stat, len(names), total.shape[1:], parts.metadata.dimension_names[2:])[:] = total
    red.attrs["fingerprint"] = fingerprint(group)  # last: commits the group
    remove(group, GROUP)
