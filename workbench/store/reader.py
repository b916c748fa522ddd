"""Reading a recording store: a lazy xarray DataTree, integrity checks, a summary."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from . import accessor  # noqa: F401  (registers ``tree.wb`` on the trees open_store returns)
from .core import SCHEMA, StoreError, short, zarr_store
from .reductions import GROUP, fresh, incomplete
from .samples import GROUP as SAMPLES
from .sums import GROUP as PARTIALS


def open_store(path: str | Path, allow_partial: bool = False, storage_options: dict | None = None) -> xr.DataTree:
    """Open a recording lazily (dask) as a DataTree; refuse a half-written or foreign store.

    ``path`` is a folder or a URL zarr's fsspec layer reads (``file://``, ``memory://``, ``s3://``,
    ``gs://``; ``storage_options`` go to fsspec, e.g. ``{"endpoint_url": ...}`` for an S3 server).
    The store's per-set reductions, when they cover its prompts, are attached as the ``reductions``
    child (read without dask: a selection reads only its chunks); stale ones are left out."""
    store, path = zarr_store(path, storage_options, read_only=True)
    if isinstance(path, Path) and not (path / "zarr.json").exists():
        raise StoreError(f"{path} is not a recording store (no zarr.json): record one with `workbench record --out {path}`")
    try:
        group = zarr.open_group(store, mode="r", use_consolidated=False)  # one metadata read for both checks
    except FileNotFoundError as err:
        raise StoreError(
            f"{path} is not a recording store (no zarr.json): record one, or copy one there with `workbench push`"
        ) from err
    except Exception as err:
        raise _unreadable(path, err) from err
    _check_lengths(group, path)  # before xarray, which would only say the sizes conflict
    try:
        tree = _statistics(store, group)
    except Exception as err:
        raise _unreadable(path, err) from err
    if GROUP in group:
        if fresh(group):
            _check_reductions(group, path)
            tree[GROUP] = xr.open_datatree(store, engine="zarr", group=GROUP, chunks=None, consolidated=False)
    attrs = tree.attrs
    if attrs.get("workbench_schema") != SCHEMA:
        raise StoreError(f"{path} is not a workbench recording (schema {attrs.get('workbench_schema')!r})")
    missing = [s for s in attrs["sites"] if s not in tree.children]
    if missing and not allow_partial:
        raise StoreError(
            f"{path} is half-written: sites {short(missing)} have no data yet. Resume with the same `workbench record` command"
        )
    done = tree["done"].values
    if not done.all() and not allow_partial:
        raise StoreError(
            f"{path} is half-written: {int((~done).sum())} of {done.size} prompts are not recorded. "
            "Resume with the same `workbench record` command, or pass allow_partial=True to read what is there"
        )
    if not allow_partial:
        lost = missing_chunks(path, group)
        if lost:
            raise StoreError(
                f"{path} is damaged: {len(lost)} chunk(s) of recorded prompts are missing (first: {lost[0]}); they would read as NaN. "
                f"Run `workbench info --check {path}` for the list, then record those prompts into a new store"
            )
    root = tree.to_dataset().set_coords([c for c in ("text", "set", "seed", "done", "timestep") if c in tree])
    # numpy StringDType does not mix with plain str arrays: hold the labels as Python strings
    root = root.assign_coords({c: root[c].astype(object).load() for c in ("text", "set", "branch") if c in root})
    tree.dataset = root
    return tree


def _statistics(store, group: zarr.Group) -> xr.DataTree:
    """The root and the site groups as a DataTree. The groups kept beside them (maps, samples:
    read by open_maps and open_samples; a sums-only recording's partials) and the reductions are
    not read here, so a run of theirs stopped half-way never makes the recording unreadable."""
    beside = {GROUP, PARTIALS, SAMPLES, "maps"}
    sites = [k for k, _ in group.groups() if k not in beside and not k.startswith("maps-")]
    opened = {"/": xr.open_dataset(store, engine="zarr", chunks={}, consolidated=False)}
    opened.update({f"/{k}": xr.open_dataset(store, group=k, engine="zarr", chunks={}, consolidated=False) for k in sites})
    tree = xr.DataTree.from_dict(opened)
    tree.attrs.update(dict(group.attrs))
    return tree


def _check_reductions(group: zarr.Group, path) -> None:
    lacking = incomplete(group)
    if lacking:
        raise StoreError(
            f"{path}: its per-set reductions are incomplete ({len(lacking)} array(s) missing, first: reductions/{lacking[0]}): "
            f"rebuild them with `workbench reduce {path}`"
        )


def _unreadable(path: Path, err: Exception) -> StoreError:
    return StoreError(
        f"{path} could not be read as a recording ({type(err).__name__}: {err}): it may be corrupt; record it again"
    )


def _check_lengths(group: zarr.Group, path: Path) -> None:
    """Every prompt-long array must have the committed number of rows (``n_prompts``)."""
    try:
        attrs = dict(group.attrs)
        if attrs.get("workbench_schema") != SCHEMA or "n_prompts" not in attrs:
            return  # not ours, or from before n_prompts: the checks below say so
        n = int(attrs["n_prompts"])
        lengths = {name: group[name].shape[0] for name in ("prompt", "seed", "done", "text", "set")}
        lengths.update({f"{s}/{k}": a.shape[0] for s in attrs["sites"] if s in group for k, a in group[s].arrays()})
    except (KeyError, ValueError, OSError):
        return
    off = {k: v for k, v in lengths.items() if v != n}
    if off:
        raise StoreError(
            f"{path}: adding prompts to it was interrupted ({len(off)} arrays have other than its {n} rows): "
            "run the same `workbench record` command again to finish it"
        )


def _stored_keys(arr: zarr.Array) -> set[str]:
    """The chunk keys an array holds in storage (one listing of its prefix).

    zarr has no public call for this (``nchunks_initialized`` only counts), so this uses its
    private ``_shards_initialized`` and ``_async_array``; tests/test_store.py checks them against
    the files on disk, and a zarr release without them gets this error, not a silent miss."""
    try:
        from zarr.core.array import _shards_initialized
        from zarr.core.sync import sync

        return set(sync(_shards_initialized(arr._async_array)))
    except (ImportError, AttributeError) as err:
        raise StoreError(
            f"this zarr ({zarr.__version__}) lacks the chunk listing the integrity check uses ({err}): "
            "install the zarr version of pyproject.toml, or report it"
        ) from err


def missing_chunks(path: str | Path, group: zarr.Group | None = None) -> list[str]:
    """Chunks that recorded prompts must have but storage lacks, as 'site/stat prompts a-b' lines.

    Every prompt marked done was written whole before its flag, so each chunk of its prompt block
    must exist in every statistic of every site; a missing one would silently read as NaN."""
    group = group if group is not None else zarr.open_group(zarr_store(path, read_only=True)[0], mode="r", use_consolidated=False)
    done = np.flatnonzero(group["done"][:])
    out = []
    for site in group.attrs["sites"]:
        if site not in group:
            continue
        for stat, arr in group[site].arrays():
            files = arr.shards or arr.chunks  # a sharded array keeps one file per shard
            rows = files[0]
            blocks = sorted({int(i) // rows for i in done})
            if not blocks:
                continue
            have = _stored_keys(arr)
            grid = [range(-(-n // c)) for n, c in zip(arr.shape[1:], files[1:])]
            for b in blocks:
                for rest in itertools.product(*grid):
                    if arr.metadata.encode_chunk_key((b, *rest)) not in have:
                        out.append(
                            f"{site}/{stat} prompts {b * rows}-{min((b + 1) * rows, arr.shape[0]) - 1} (chunk {(b, *rest)})"
                        )
    return out


def check_store(path: str | Path, storage_options: dict | None = None) -> None:
    """Verify a store: every chunk recorded prompts need exists, and every stored chunk decodes.
    Raises StoreError naming what is missing or unreadable."""
    store, path = zarr_store(path, storage_options, read_only=True)
    group = zarr.open_group(store, mode="r", use_consolidated=False)
    lost = missing_chunks(path, group)
    if lost:
        listing = "; ".join(lost[:10]) + (f"; and {len(lost) - 10} more" if len(lost) > 10 else "")
        raise StoreError(
            f"{path} is damaged: {len(lost)} chunk(s) of recorded prompts are missing: {listing}. "
            "Record those prompts into a new store (their values are lost)"
        )
    _check_reductions(group, path)
    _check_arrays(group, "", path)


def _check_arrays(group: zarr.Group, prefix: str, path) -> None:
    """Decode every chunk of every array, subgroups (the reductions) included."""
    for name, arr in group.arrays():
        _read_all(arr, prefix + name, path)
    for gname, sub in group.groups():
        if prefix or gname != GROUP or fresh(group):  # stale reductions are never read: nothing to verify
            _check_arrays(sub, f"{prefix}{gname}/", path)


def _read_all(arr, name, path) -> None:
    derived = name.startswith(f"{GROUP}/")
    fix = "rebuild them with `workbench reduce STORE`" if derived else "record those prompts again into a new store"
    step = arr.chunks[0] if arr.ndim else 1
    for lo in range(0, max(arr.shape[0] if arr.ndim else 1, 1), step):
        try:
            data = arr[lo : lo + step] if arr.ndim else arr[...]
        except Exception as err:
            raise StoreError(
                f"{path}: array {name} has a corrupt chunk near {'row' if derived else 'prompt'} {lo} ({type(err).__name__}); {fix}"
            ) from err
        if derived and data.dtype.kind == "f" and np.isnan(data).any():  # a lost shard reads as NaN
            raise StoreError(f"{path}: array {name} is missing its data near row {lo}; {fix}")


def provenance_of(tree: xr.DataTree) -> dict:
    return dict(tree.attrs["provenance"])


def describe(tree: xr.DataTree) -> str:
    """A short human summary of a store."""
    p = provenance_of(tree)
    sets = {}
    for s in tree["set"].values:
        sets[str(s)] = sets.get(str(s), 0) + 1
    return json.dumps({"model": p.get("model_id"), "steps": p.get("steps"), "unet_calls": int(tree.sizes.get("step", 0)),
                       "sites": len(tree.attrs["sites"]), "prompts": sets, "complete": tree.attrs.get("complete"),
                       "reductions": "reductions" in tree.children}, indent=1)  # fmt: skip
