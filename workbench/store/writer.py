"""Creating, extending and filling a recording store (see workbench.store for the layout)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from ..models.sites import Site
from ..prompts import Prompt, PromptSet
from . import sums
from .core import MUST_MATCH, NEURON_BLOCK, SCHEMA, StoreError, consolidate, now, short
from .reductions import fresh, reduce_store


@dataclass
class StoreWriter:
    """Creates, extends and fills a recording store."""

    path: Path
    group: zarr.Group
    chunk: int
    _ready: bool = False  # arrays created and steps checked: later batches skip the metadata reads
    reduce: bool = True  # write the per-set reductions when the store is complete

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, provenance: dict, sites: list[Site], stats: tuple[str, ...], chunk: int = 8,
             sums_only: bool = False) -> StoreWriter:  # fmt: skip
        """Create a store, or reopen one recorded with the same model, sites, stats and settings.
        ``sums_only``: keep per-set sums only, no per-prompt rows (store.sums)."""
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
            if sums.is_sums_only(group) != sums_only:
                kinds = ("per-set sums only (--sums-only)", "per-prompt statistics")
                have, want = (kinds[0], kinds[1]) if sums.is_sums_only(group) else (kinds[1], kinds[0])
                raise StoreError(f"{path} keeps {have}, this run asks for {want}: record into a new --out path")
            if tuple(attrs["stats"]) != tuple(stats):
                raise StoreError(
                    f"{path} holds statistics {attrs['stats']} but {list(stats)} were asked for: use the same --stats or a new store"
                )
            writer = cls(path, group, int(attrs.get("chunk", chunk)))
            writer._repair()
            group.attrs.update({"complete": False, "updated": now()})
            return writer
        # the skeleton is made aside and renamed into place: a kill leaves no store, or a whole one
        tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
        for old in path.parent.glob(f".{path.name}.creating-*"):  # left by killed creators (the lock makes us the only one)
            shutil.rmtree(old, ignore_errors=True)
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        group.attrs.update(
            {"workbench_schema": SCHEMA, "provenance": provenance, "sites": [s.name for s in sites], "stats": list(stats),
             "site_info": {s.name: s.info() for s in sites},
             "chunk": chunk, "n_prompts": 0, "complete": False, "created": now(), "updated": now(),
             **({"keep": sums.KEEP} if sums_only else {})}
        )  # fmt: skip
        for name, dtype in (("prompt", "int64"), ("seed", "int64"), ("done", "bool"), ("text", str), ("set", str)):
            # the done flags are chunked like the data, so writers of different chunks share no file
            rows = chunk if name == "done" else 4096
            group.create_array(
                name, shape=(0,), chunks=(rows,), dtype=dtype, dimension_names=["prompt"], fill_value=_fill_value(dtype)
            )
        group["text"].attrs["_workbench_coord"] = True
        if path.exists():
            path.rmdir()  # an empty folder the user made: rename replaces it
        os.rename(tmp, path)
        return cls(path, zarr.open_group(str(path), mode="r+", use_consolidated=False), chunk)

    # -- prompts ---------------------------------------------------------------------------------
    def n_prompts(self) -> int:
        """Rows that are part of the store: the ``n_prompts`` attribute, written last when prompts
        are added (stores from before it: the index array's length)."""
        return int(self.group.attrs.get("n_prompts", self.group["prompt"].shape[0]))

    def _prompt_arrays(self):
        yield from (self.group[name] for name in PROMPT_ARRAYS)
        for site in self.group.attrs["sites"]:
            if site in self.group:
                yield from self.group[site].array_values()

    def _repair(self) -> None:
        """Undo an interrupted extension: every prompt-long array back to ``n_prompts`` rows."""
        n = self.n_prompts()
        for arr in self._prompt_arrays():
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))

    def prompts(self) -> list[Prompt]:
        n = self.n_prompts()
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
        if new and sums.is_sums_only(self.group) and "step" in self.group:  # its first chunk is recorded
            raise StoreError(
                f"{self.path} keeps per-set sums only and has begun recording: its prompts are fixed; "
                f"record the {len(new)} new prompts (first: {new[0].text!r}) into a new --out path"
            )
        if new:
            # every array is resized and filled first; the n_prompts attribute, written last, commits
            # the new rows (a kill before it leaves rows that _repair drops on the next open)
            n0 = len(have)
            n1 = n0 + len(new)
            for arr in self._prompt_arrays():
                arr.resize((n1, *arr.shape[1:]))
            self.group["prompt"][n0:n1] = np.arange(n0, n1)
            self.group["seed"][n0:n1] = np.array([p.seed for p in new], dtype=np.int64)
            self.group["done"][n0:n1] = np.zeros(len(new), dtype=bool)
            self.group["text"][n0:n1] = np.array([p.text for p in new], dtype=object)
            self.group["set"][n0:n1] = np.array([p.set for p in new], dtype=object)
            self.group.attrs["n_prompts"] = n1
            for i, p in enumerate(new):
                have[p] = n0 + i
        return [have[p] for p in prompts]

    def indices(self, prompts: PromptSet) -> list[int]:
        """Store indices of ``prompts``, all of which must be in the store already (no writes)."""
        have = {p: i for i, p in enumerate(self.prompts())}
        missing = [p for p in prompts if p not in have]
        if missing:
            raise StoreError(
                f"{len(missing)} of the prompts (first: {missing[0].text!r}) are not in {self.path}'s plan: "
                "give every shard the same prompt sets and --seed, or let the planned run finish first "
                "(`workbench record --finalise STORE` says which shards are missing)"
            )
        return [have[p] for p in prompts]

    def done(self) -> np.ndarray:
        return self.group["done"][:]

    def sums_only(self) -> bool:
        """Does this store keep per-set sums only (store.sums)?"""
        return sums.is_sums_only(self.group)

    def has_arrays(self) -> bool:
        """Have the data arrays been made (by the first recorded batch)?"""
        if sums.is_sums_only(self.group):
            return "step" in self.group and sums.GROUP in self.group
        return "step" in self.group and all(s in self.group for s in self.group.attrs["sites"])

    def check_shardable(self) -> None:
        """Sharded writers own whole chunks; that needs the done flags chunked like the data."""
        rows = self.group["done"].chunks[0]
        if rows != self.chunk:
            raise StoreError(
                f"{self.path} keeps its done flags in chunks of {rows} prompts (made before sharded recording): "
                "record it with one process, or record the shards into a new store"
            )

    # -- data ------------------------------------------------------------------------------------
    def _ensure_arrays(self, rec) -> None:
        if self._ready:
            return
        # each array is created if missing and its values (re)written, so a kill between any two of
        # these steps is finished by the next run
        n = self.n_prompts()
        steps = len(rec.timesteps)
        if "step" in self.group and self.group["step"].shape[0] != steps:
            raise StoreError(
                f"{self.path} holds {self.group['step'].shape[0]} UNet calls per prompt, this run made {steps}: use the store's --steps and scheduler"
            )
        axes = {
            "step": ("int64", 0, np.arange(steps)),
            "timestep": ("float64", 0.0, np.array(rec.timesteps, dtype=np.float64)),
            "branch": (str, "", np.array(rec.branches, dtype=object)),
        }
        for name, (dtype, fill, values) in axes.items():
            dim = "branch" if name == "branch" else "step"
            arr = self.group[name] if name in self.group else self.group.create_array(
                name, shape=(len(values),), dtype=dtype, dimension_names=[dim], fill_value=fill
            )  # fmt: skip
            if arr.shape != values.shape or not np.array_equal(arr[:], values):
                arr[:] = values  # written only when not yet right: sharded writers change no shared file
        info = self.group.attrs["site_info"]
        only_sums = sums.is_sums_only(self.group)
        for site, stats in rec.stats.items():
            g = self.group[site] if site in self.group else self.group.create_group(site)
            want = {**info[site], "tokens": rec.tokens.get(site)}
            if {k: g.attrs.get(k) for k in want} != want:
                g.attrs.update(want)
            for stat, data in {} if only_sums else stats.items():
                if stat in g:
                    continue
                width = data.shape[-1]
                if data.ndim == 4:
                    dims, shape = ["prompt", "branch", "step", "neuron"], (n, len(rec.branches), steps, width)
                else:
                    dims, shape = ["prompt", "branch", "neuron"], (n, len(rec.branches), width)
                # one file per prompt chunk and statistic (a Zarr v3 shard), holding one inner chunk
                # per block of NEURON_BLOCK neurons: a wide site no longer makes several files a chunk
                chunks = (self.chunk, *shape[1:-1], min(width, NEURON_BLOCK))
                shards = (self.chunk, *shape[1:-1], -(-width // chunks[-1]) * chunks[-1]) if width > NEURON_BLOCK else None
                g.create_array(stat, shape=shape, chunks=chunks, shards=shards, dtype="float32", dimension_names=dims,
                               fill_value=float("nan"))  # fmt: skip
        if only_sums:
            sums.ensure_arrays(self.group, rec, self.chunk)
        self._ready = True

    def write(self, indices: list[int], rec) -> None:
        """Write one batch (contiguous store indices), then mark it done. ``rec`` is a
        ``workbench.recording.Recording``: ``stats[site][stat]`` numpy arrays, ``timesteps``,
        ``tokens``, ``branches``."""
        self._ensure_arrays(rec)
        lo, hi = indices[0], indices[-1] + 1
        if list(indices) != list(range(lo, hi)):
            raise ValueError("a batch must cover contiguous store indices")
        if sums.is_sums_only(self.group):
            sums.write_chunk(self.group, list(indices), rec, self.chunk)
        else:
            for site, stats in rec.stats.items():
                for stat, data in stats.items():
                    self.group[site][stat][lo:hi] = np.asarray(data)
        self.group["done"][lo:hi] = True  # last: the chunk's data is whole before it counts as recorded

    def finish(self) -> bool:
        """Mark complete (if every prompt is done) and consolidate the metadata once."""
        group = zarr.open_group(str(self.path), mode="r+", use_consolidated=False)  # fresh: others may have written
        complete = bool(group["done"][:].all())
        group.attrs.update({"complete": complete, "updated": now()})
        if complete and "plan" in group.attrs:
            del group.attrs["plan"]  # a sharded run's plan ends with it; a later run plans anew
        if complete and sums.is_sums_only(group):
            sums.fold(group)  # the partial sums become the store's reductions
        elif complete and self.reduce and not fresh(group):
            reduce_store(group)  # the per-set sums the masks read (store.reductions)
        consolidate(self.path)
        return complete


#: the root arrays along the prompt dimension
PROMPT_ARRAYS = ("prompt", "seed", "done", "text", "set")


def _fill_value(dtype):
    return {"int64": 0, "bool": False}.get(dtype, "" if dtype is str else 0)
