"""The recording store: one Zarr v3 store per recording, read back as an xarray DataTree.

Layout (docs/store.md has the full schema)::

    /                  attrs: workbench_schema, provenance, sites, stats, complete
      prompt (prompt)  int index;  text, set, seed, done (prompt)
      step (step)      UNet call index;  timestep (step)
      branch (branch)  'uncond', 'cond'
    /<site name>/      one group a site, attrs: family, component, width, tokens
      sumsq, sumsq_unit[, sum, absmax]  float32 (prompt, branch, step, neuron)  [text sites: no step]

Writers fill one prompt chunk at a time (region writes) and mark those prompts ``done`` last, so
a killed recording resumes where it stopped, and the ``done`` flags tell a half-written store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from .calibration import Prompt, PromptSet
from .models.sites import Site
from .recorder import Recording

SCHEMA = 1
NEURON_BLOCK = 2048
#: provenance keys that must match for a recording to be continued in the same store
MUST_MATCH = ("model_id", "weights_hash", "scheduler", "steps", "guidance", "image_size", "dtype")


class StoreError(ValueError):
    """A store that cannot be used as asked; the message says why and what to do."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class StoreWriter:
    """Creates, extends and fills a recording store."""

    path: Path
    group: zarr.Group
    chunk: int
    _ready: bool = False  # arrays created and steps checked: later batches skip the metadata reads

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, provenance: dict, sites: list[Site], stats: tuple[str, ...], chunk: int = 8) -> StoreWriter:
        """Create a store, or reopen one recorded with the same model, sites, stats and settings."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            try:
                group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
            except Exception as err:
                raise StoreError(f"{path} exists but is not a Zarr store ({err}): choose another --out path") from err
            attrs = dict(group.attrs)
            if attrs.get("workbench_schema") != SCHEMA:
                raise StoreError(f"{path} is not a workbench recording (schema {attrs.get('workbench_schema')}): choose another --out path")
            old = attrs["provenance"]
            diff = [k for k in MUST_MATCH if old.get(k) != provenance.get(k)]
            if diff:
                detail = "; ".join(f"{k}: store has {old.get(k)!r}, now {provenance.get(k)!r}" for k in diff)
                raise StoreError(f"{path} was recorded with other settings ({detail}): record into a new --out path, or use the store's settings")
            names = [s.name for s in sites]
            if attrs["sites"] != names:
                raise StoreError(
                    f"{path} holds sites {_short(attrs['sites'])} but {_short(names)} were asked for: "
                    "record other sites into a new store, or pass the store's site selection"
                )
            if tuple(attrs["stats"]) != tuple(stats):
                raise StoreError(f"{path} holds statistics {attrs['stats']} but {list(stats)} were asked for: use the same --stats or a new store")
            writer = cls(path, group, int(attrs.get("chunk", chunk)))
            group.attrs.update({"complete": False, "updated": _now()})
            return writer
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        group.attrs.update(
            {"workbench_schema": SCHEMA, "provenance": provenance, "sites": [s.name for s in sites], "stats": list(stats),
             "site_info": {s.name: {"family": s.family, "component": s.component, "width": s.width} for s in sites},
             "chunk": chunk, "complete": False, "created": _now(), "updated": _now()}
        )  # fmt: skip
        for name, dtype in (("prompt", "int64"), ("seed", "int64"), ("done", "bool"), ("text", str), ("set", str)):
            group.create_array(name, shape=(0,), chunks=(4096,), dtype=dtype, dimension_names=["prompt"], fill_value=_fill(dtype))
        group["text"].attrs["_workbench_coord"] = True
        return cls(path, group, chunk)

    # -- prompts ---------------------------------------------------------------------------------
    def prompts(self) -> list[Prompt]:
        n = self.group["prompt"].shape[0]
        if n == 0:
            return []
        text, sets, seed = self.group["text"][:], self.group["set"][:], self.group["seed"][:]
        return [Prompt(str(text[i]), str(sets[i]), int(seed[i])) for i in range(n)]

    def add_prompts(self, prompts: PromptSet) -> list[int]:
        """Append the prompts not yet in the store; return the store indices of all of ``prompts``."""
        if len(prompts) == 0:
            raise StoreError("the prompt set is empty: give at least one prompt")
        have = {p: i for i, p in enumerate(self.prompts())}
        new = [p for p in dict.fromkeys(prompts) if p not in have]
        if new:
            n0 = len(have)
            n1 = n0 + len(new)
            for name in ("prompt", "seed", "done", "text", "set"):
                self.group[name].resize((n1,))
            self.group["prompt"][n0:n1] = np.arange(n0, n1)
            self.group["seed"][n0:n1] = np.array([p.seed for p in new], dtype=np.int64)
            self.group["done"][n0:n1] = np.zeros(len(new), dtype=bool)
            self.group["text"][n0:n1] = np.array([p.text for p in new], dtype=object)
            self.group["set"][n0:n1] = np.array([p.set for p in new], dtype=object)
            for site in self.group.attrs["sites"]:
                if site in self.group:
                    for arr in self.group[site].array_values():
                        arr.resize((n1, *arr.shape[1:]))
            for i, p in enumerate(new):
                have[p] = n0 + i
        return [have[p] for p in prompts]

    def done(self) -> np.ndarray:
        return self.group["done"][:]

    # -- data ------------------------------------------------------------------------------------
    def _ensure_arrays(self, rec: Recording) -> None:
        if self._ready:
            return
        n = self.group["prompt"].shape[0]
        steps = len(rec.timesteps)
        if "step" not in self.group:
            self.group.create_array("step", shape=(steps,), dtype="int64", dimension_names=["step"], fill_value=0)[:] = np.arange(steps)
            self.group.create_array("timestep", shape=(steps,), dtype="float64", dimension_names=["step"], fill_value=0.0)[:] = np.array(rec.timesteps)
            br = self.group.create_array("branch", shape=(len(rec.branches),), dtype=str, dimension_names=["branch"], fill_value="")
            br[:] = np.array(rec.branches, dtype=object)
        elif self.group["step"].shape[0] != steps or not np.allclose(self.group["timestep"][:], rec.timesteps):
            raise StoreError(f"{self.path} holds {self.group['step'].shape[0]} UNet calls per prompt, this run made {steps}: use the store's --steps and scheduler")
        info = self.group.attrs["site_info"]
        for site, stats in rec.stats.items():
            if site in self.group:
                continue
            g = self.group.create_group(site)
            g.attrs.update({**info[site], "tokens": rec.tokens.get(site)})
            for stat, data in stats.items():
                width = data.shape[-1]
                if data.dim() == 4:
                    dims, shape = ["prompt", "branch", "step", "neuron"], (n, len(rec.branches), steps, width)
                else:
                    dims, shape = ["prompt", "branch", "neuron"], (n, len(rec.branches), width)
                chunks = (self.chunk, *shape[1:-1], min(width, NEURON_BLOCK))
                g.create_array(stat, shape=shape, chunks=chunks, dtype="float32", dimension_names=dims, fill_value=float("nan"))
        self._ready = True

    def write(self, indices: list[int], rec: Recording) -> None:
        """Write one batch (contiguous store indices), then mark it done."""
        self._ensure_arrays(rec)
        lo, hi = indices[0], indices[-1] + 1
        if list(indices) != list(range(lo, hi)):
            raise ValueError("a batch must cover contiguous store indices")
        for site, stats in rec.stats.items():
            for stat, data in stats.items():
                self.group[site][stat][lo:hi] = data.numpy()
        self.group["done"][lo:hi] = True

    def finish(self) -> None:
        """Mark complete (if every prompt is done) and consolidate the metadata once."""
        complete = bool(self.done().all())
        self.group.attrs.update({"complete": complete, "updated": _now()})
        consolidate(self.path)


def _fill(dtype):
    return {"int64": 0, "bool": False}.get(dtype, "" if dtype is str else 0)


def _short(names: list[str]) -> str:
    return f"[{', '.join(names[:2])}{', ...' if len(names) > 2 else ''}] ({len(names)})"


# -- reading ----------------------------------------------------------------------------------
def open_store(path: str | Path, allow_partial: bool = False) -> xr.DataTree:
    """Open a recording lazily (dask) as a DataTree; refuse a half-written or foreign store."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise StoreError(f"{path} is not a recording store (no zarr.json): record one with `workbench record --out {path}`")
    try:
        tree = xr.open_datatree(str(path), engine="zarr", chunks={}, consolidated=False)
    except Exception as err:
        raise StoreError(f"{path} could not be read as a recording ({type(err).__name__}: {err}): it may be corrupt; record it again") from err
    attrs = tree.attrs
    if attrs.get("workbench_schema") != SCHEMA:
        raise StoreError(f"{path} is not a workbench recording (schema {attrs.get('workbench_schema')!r})")
    missing = [s for s in attrs["sites"] if s not in tree.children]
    if missing and not allow_partial:
        raise StoreError(f"{path} is half-written: sites {_short(missing)} have no data yet. Resume with the same `workbench record` command")
    done = tree["done"].values
    if not done.all() and not allow_partial:
        raise StoreError(
            f"{path} is half-written: {int((~done).sum())} of {done.size} prompts are not recorded. "
            "Resume with the same `workbench record` command, or pass allow_partial=True to read what is there"
        )
    root = tree.to_dataset().set_coords([c for c in ("text", "set", "seed", "done", "timestep") if c in tree])
    # numpy StringDType does not mix with plain str arrays: hold the labels as Python strings
    root = root.assign_coords({c: root[c].astype(object).load() for c in ("text", "set", "branch") if c in root})
    tree.dataset = root
    return tree


def check_store(path: str | Path) -> None:
    """Read every chunk of every array once; raise StoreError naming the first unreadable one."""
    group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    for name, arr in group.arrays():
        _read_all(arr, name, path)
    for gname, sub in group.groups():
        for name, arr in sub.arrays():
            _read_all(arr, f"{gname}/{name}", path)


def _read_all(arr, name, path) -> None:
    step = arr.chunks[0] if arr.ndim else 1
    for lo in range(0, max(arr.shape[0] if arr.ndim else 1, 1), step):
        try:
            arr[lo : lo + step] if arr.ndim else arr[...]
        except Exception as err:
            raise StoreError(f"{path}: array {name} has a corrupt chunk near prompt {lo} ({type(err).__name__}); record those prompts again into a new store") from err


def provenance_of(tree: xr.DataTree) -> dict:
    return dict(tree.attrs["provenance"])


def describe(tree: xr.DataTree) -> str:
    """A short human summary of a store."""
    p = provenance_of(tree)
    sets = {}
    for s in tree["set"].values:
        sets[str(s)] = sets.get(str(s), 0) + 1
    return json.dumps({"model": p.get("model_id"), "steps": p.get("steps"), "unet_calls": int(tree.sizes.get("step", 0)),
                       "sites": len(tree.attrs["sites"]), "prompts": sets, "complete": tree.attrs.get("complete")}, indent=1)  # fmt: skip


def consolidate(path) -> None:
    """Write consolidated metadata (fast opens); zarr warns that v3 has no spec for it yet, which
    is known and harmless here: readers that ignore it still open the store."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(str(path))
