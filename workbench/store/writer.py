"""Creating, extending and filling a recording store (see workbench.store for the layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from ..models.sites import Site
from ..prompts import Prompt, PromptSet
from .batch import Recording
from .core import MUST_MATCH, NEURON_BLOCK, SCHEMA, StoreError, consolidate, now, short


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
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"{path} is a file, not a store folder: choose another --out path (a store is a folder ending in .zarr)"
            )
        if path.exists() and any(path.iterdir()):
            try:
                group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
            except Exception as err:
                raise StoreError(f"{path} exists but is not a Zarr store ({err}): choose another --out path") from err
            attrs = dict(group.attrs)
            if attrs.get("workbench_schema") != SCHEMA:
                raise StoreError(
                    f"{path} is not a workbench recording (schema {attrs.get('workbench_schema')}): choose another --out path"
                )
            old = attrs["provenance"]
            diff = [k for k in MUST_MATCH if old.get(k) != provenance.get(k)]
            if diff:
                detail = "; ".join(f"{k}: store has {old.get(k)!r}, now {provenance.get(k)!r}" for k in diff)
                raise StoreError(
                    f"{path} was recorded with other settings ({detail}): record into a new --out path, or use the store's settings"
                )
            names = [s.name for s in sites]
            if attrs["sites"] != names:
                raise StoreError(
                    f"{path} holds sites {short(attrs['sites'])} but {short(names)} were asked for: "
                    "record other sites into a new store, or pass the store's site selection"
                )
            if tuple(attrs["stats"]) != tuple(stats):
                raise StoreError(
                    f"{path} holds statistics {attrs['stats']} but {list(stats)} were asked for: use the same --stats or a new store"
                )
            writer = cls(path, group, int(attrs.get("chunk", chunk)))
            group.attrs.update({"complete": False, "updated": now()})
            return writer
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        group.attrs.update(
            {"workbench_schema": SCHEMA, "provenance": provenance, "sites": [s.name for s in sites], "stats": list(stats),
             "site_info": {s.name: {"family": s.family, "component": s.component, "width": s.width} for s in sites},
             "chunk": chunk, "complete": False, "created": now(), "updated": now()}
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
            self.group.create_array("step", shape=(steps,), dtype="int64", dimension_names=["step"], fill_value=0)[:] = np.arange(
                steps
            )
            self.group.create_array("timestep", shape=(steps,), dtype="float64", dimension_names=["step"], fill_value=0.0)[:] = (
                np.array(rec.timesteps)
            )
            br = self.group.create_array(
                "branch", shape=(len(rec.branches),), dtype=str, dimension_names=["branch"], fill_value=""
            )
            br[:] = np.array(rec.branches, dtype=object)
        elif self.group["step"].shape[0] != steps or not np.allclose(self.group["timestep"][:], rec.timesteps):
            raise StoreError(
                f"{self.path} holds {self.group['step'].shape[0]} UNet calls per prompt, this run made {steps}: use the store's --steps and scheduler"
            )
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
        self.group.attrs.update({"complete": complete, "updated": now()})
        consolidate(self.path)


def _fill(dtype):
    return {"int64": 0, "bool": False}.get(dtype, "" if dtype is str else 0)
