"""Per prompt-set sums of every statistic: what masks, sweeps and overlaps need, a few MB per set.

The masks need, per site, step and neuron, ``sum over the prompts of a set`` of a statistic for one
branch; the raw store holds it per prompt and reads ~9x more (both branches, every step) for each
set. ``reduce_store`` reads the raw store once and writes::

    /reductions/            attrs: fingerprint (written last: without it the group is ignored)
      prompt_set (prompt_set)  the prompt-set names
      <site>/<stat>         float64 (prompt_set, branch, step, neuron)  [text: no step]

Each array is one Zarr v3 shard per set (one file) holding one inner chunk per (branch, step), so
reading t_hat steps of one branch reads those chunks' bytes and the shard index, nothing else.
Sums are float64, so the norms equal those computed from the raw store (which also sums in float64).

The fingerprint names the prompts the sums cover (their count and a hash of their set labels);
a store extended after its reductions were written has another fingerprint, and ``open_store``
then leaves the stale reductions out (analysis reads the raw store) until ``reduce_store`` runs.

Replacing them is safe against a kill at any moment: the old group's ``zarr.json`` goes first (one
atomic unlink, after which zarr no longer lists the group and its fingerprint is gone), then the
rest of its files whether or not their metadata is left; the new group is written in place and its
fingerprint comes last. In between the store has no reductions and analysis reads the raw store;
the next ``reduce`` (or ``record``) writes them again.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import numpy as np
import zarr

from .core import StoreError

GROUP = "reductions"
#: bytes of accumulator per pass over the raw store (sets are summed in groups that fit)
BUDGET = 512 * 2**20


def fingerprint(group: zarr.Group) -> str:
    """What a store's reductions must match: the number of prompts and their set labels."""
    n = int(group.attrs.get("n_prompts", group["prompt"].shape[0]))
    sets = [str(s) for s in group["set"][:n]]
    return f"{n}:" + hashlib.sha1("\n".join(sets).encode()).hexdigest()[:16]


def fresh(group: zarr.Group) -> bool:
    """Does the store hold reductions that cover exactly its prompts?"""
    try:
        red = group[GROUP]
    except KeyError:
        return False
    return red.attrs.get("fingerprint") == fingerprint(group)


def incomplete(group: zarr.Group) -> list[str]:
    """What a committed reductions group lacks: every site's group and statistic of the raw store,
    and ``prompt_set``; empty when whole (or when there are no current reductions to check)."""
    if not fresh(group):
        return []
    red = group[GROUP]
    have = set(red.keys())
    out = [] if "prompt_set" in have else ["prompt_set"]
    for site in group.attrs["sites"]:
        if site not in group:
            continue
        stats = set(red[site].keys()) if site in have else set()
        out += [f"{site}/{stat}" for stat, _ in group[site].arrays() if stat not in stats]
    return out


def remove(group: zarr.Group, name: str = GROUP) -> None:
    """Delete a child group of a local store whole, its own ``zarr.json`` first: from that first
    (atomic) step on zarr no longer lists it, and leftovers without metadata are deleted too."""
    root = getattr(group.store, "root", None)
    if root is None:
        raise StoreError(f"{group.store}: reductions are written to a local store folder")
    folder = Path(root) / group.path / name
    (folder / "zarr.json").unlink(missing_ok=True)
    if folder.exists():
        shutil.rmtree(folder)


def reduce_store(store: str | zarr.Group, progress: bool = False) -> zarr.Group:
    """Write (or rewrite) the per-set sums of a complete store; returns the reductions group.

    The pass is a dask computation, a task per raw prompt chunk (it reads that chunk and sums its
    prompts per set) and a tree of additions, one site at a time: under a ``dask.distributed``
    client the workers read the store and sum, and only the sums (a few MB a set) come back to be
    written here, each site's as soon as it is done; without one, dask's threads do it here.
    The caller holds the store's writer lock (``StoreWriter.finish`` and ``workbench reduce`` do)."""
    import dask
    from tqdm.auto import tqdm

    group = store if isinstance(store, zarr.Group) else zarr.open_group(store, mode="r+", use_consolidated=False)
    n = int(group.attrs.get("n_prompts", group["prompt"].shape[0]))
    done = group["done"][:n]
    if group.attrs.get("keep") == "sums":  # store.sums: no per-prompt statistics to reduce
        raise StoreError(
            f"{getattr(group.store, 'root', group.store)} keeps per-set sums only: they are made when its recording "
            "completes (run the same record command again to finish or repair them)"
        )
    if n == 0 or not done.all():
        raise StoreError(
            f"{getattr(group.store, 'root', group.store)}: reductions need a complete store ({int((~done).sum())} of {n} prompts "
            "not recorded): finish the recording first"
        )
    names, codes = set_codes(group)
    remove(group, GROUP)  # stale, half-written or half-deleted: rebuilt whole
    red = group.create_group(GROUP)
    red.create_array("prompt_set", shape=(len(names),), dtype=str, dimension_names=["prompt_set"], fill_value="")[:] = np.array(
        names, dtype=object
    )
    sites = [s for s in group.attrs["sites"] if s in group]
    run = uuid.uuid4().hex[:8]  # task names of this pass only: a cluster never hands back another pass's sums
    for site in tqdm(sites, desc="reductions", disable=not progress):
        out = red.create_group(site)
        plans = []
        for stat, raw in group[site].arrays():
            target = sums_array(out, stat, len(names), raw.shape[1:], raw.metadata.dimension_names[1:])
            rest = int(np.prod(raw.shape[1:]))
            plans += [
                (target, first, 8 * rest * count, sums)
                for first, count, sums in set_sums(raw, codes, len(names), f"{run}-{site}/{stat}")
            ]
        for batch in _batches(plans):  # one graph per batch: its reads share the workers
            for (target, first, *_), value in zip(batch, dask.compute(*[sums for *_, sums in batch])):
                target[first : first + value.shape[0]] = value  # whole shards, one file a set
    red.attrs["fingerprint"] = fingerprint(group)  # last: commits the group
    return red


#: the key prefix of the tasks that read and sum one raw prompt chunk (what a task stream counts)
PART = "reduce-chunk"


def set_sums(raw: zarr.Array, codes: np.ndarray, n_sets: int, name: str) -> list:
    """Lazy float64 sums of ``raw`` (prompt, branch, [step,] neuron) over the prompts of each set:
    ``[(first set, number of sets, delayed (sets, ...) array)]``, the sets in groups whose sums fit ``BUDGET``.
    Each raw prompt chunk holding a group's prompts is one task (``PART``-named)."""
    import dask

    rest = raw.shape[1:]
    group_size = max(1, BUDGET // (8 * int(np.prod(rest))))
    rows = raw.chunks[0]
    out = []
    for first in range(0, n_sets, group_size):
        last = min(first + group_size, n_sets)
        where = np.flatnonzero((codes >= first) & (codes < last))
        parts = []
        for block in np.unique(where // rows):  # only the raw chunks that hold these sets' prompts
            lo, hi = int(block) * rows, min((int(block) + 1) * rows, raw.shape[0])
            key = f"{PART}-{name}-{first}-{int(block)}".replace("/", ".")
            parts.append(dask.delayed(_chunk_sums)(raw, lo, hi, codes[lo:hi] - first, last - first, dask_key_name=key))
        out.append((first, last - first, _tree_sum(parts) if parts else dask.delayed(np.zeros)((last - first, *rest))))
    return out


def _chunk_sums(raw: zarr.Array, lo: int, hi: int, codes: np.ndarray, n_sets: int) -> np.ndarray:
    """One raw prompt chunk's sums per set (codes outside [0, n_sets) belong to other groups)."""
    data = raw[lo:hi]
    acc = np.zeros((n_sets, *data.shape[1:]))
    for i, c in enumerate(codes):
        if 0 <= c < n_sets:
            acc[c] += data[i]  # float64 accumulation, prompt by prompt
    return acc


def _batches(plans: list) -> list[list]:
    """Consecutive ``(target, first set, bytes, sums)`` plans whose sums together fit ``BUDGET``."""
    out, size = [[]], 0
    for plan in plans:
        if out[-1] and size + plan[2] > BUDGET:
            out.append([])
            size = 0
        out[-1].append(plan)
        size += plan[2]
    return out


def _tree_sum(parts: list):
    """Pairwise sums of delayed arrays (a tree, so a cluster adds in parallel and memory stays bounded)."""
    import dask

    while len(parts) > 1:
        parts = [dask.delayed(np.add)(a, b) if b is not None else a for a, b in zip(parts[::2], [*parts[1::2], None])]
    return parts[0]


def set_codes(group: zarr.Group) -> tuple[list[str], np.ndarray]:
    """The store's prompt sets in first-seen order and each prompt's set index."""
    n = int(group.attrs.get("n_prompts", group["prompt"].shape[0]))
    labels = [str(s) for s in group["set"][:n]]
    names = list(dict.fromkeys(labels))
    pos = {s: i for i, s in enumerate(names)}
    return names, np.array([pos[s] for s in labels], dtype=np.int64)


def sums_array(out: zarr.Group, stat: str, n_sets: int, rest: tuple, dims) -> zarr.Array:
    """The reductions' array for one statistic, (prompt_set, *rest) with ``rest``'s dimension names
    ``dims``: one shard a set, one inner chunk a (branch, step)."""
    inner = (1, *(1 for _ in rest[:-1]), rest[-1])  # one (branch, step) row of neurons a chunk
    return out.create_array(stat, shape=(n_sets, *rest), chunks=inner, shards=(1, *rest), dtype="float64",
                            dimension_names=["prompt_set", *dims], fill_value=float("nan"))  # fmt: skip
