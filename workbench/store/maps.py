"""Activation maps and images kept beside a recording: where in the image chosen neurons fire.

A maps group lives inside a store folder (``<store>/maps``, or ``maps-<name>`` for an edited model
or attacked prompts) and holds, per generated prompt, the generated image and, for chosen sites,
neurons and UNet calls, each neuron's input activation over the token grid (cond branch)::

    <store>/maps/           attrs: sites, steps, weights_hash, model_id, n (committed rows), complete
      text, set, seed (map_prompt)   the prompts mapped (their own list: attacked prompts are not the store's)
      done (map_prompt)              written after the prompt's data: a killed run resumes at the first not done
      image (map_prompt, y_image, x_image, rgb)   uint8
      <site>/map (map_prompt, map_step, neuron, y, x)   float16, one chunk a prompt
      <site>/neuron (neuron)         the neuron (input column) indices kept

Its dimension names are its own (``map_prompt``, ``map_step``), so the store's DataTree and its
analysis never see the maps (``open_store`` leaves every ``maps*`` group out); ``open_maps`` reads one.
Size: 2 bytes per neuron, token and step of a prompt (at SD 1.5's 64 x 64 grid, 300 neurons and
2 steps: 4.9 MB a prompt), plus the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from .core import StoreError

PREFIX = "maps"


def group_name(name: str | None = None) -> str:
    """``maps`` or ``maps-<name>``: where one condition's maps live inside a store."""
    if name in (None, "", PREFIX):
        return PREFIX
    if "/" in name or name.startswith("."):
        raise StoreError(f"maps name {name!r} must be a plain name (no '/'), e.g. 'esd' or 'attacked'")
    return f"{PREFIX}-{name}"


@dataclass
class MapWriter:
    """Creates, resumes and fills one maps group."""

    group: zarr.Group

    @classmethod
    def open(cls, store: str | Path, name: str | None, sites: dict[str, tuple[list[int], tuple[int, int]]], steps: list[int],
             image_shape: tuple[int, int, int], about: dict) -> MapWriter:  # fmt: skip
        """Create the group, or reopen one made with the same sites, neurons, grids, steps and
        weights (``about['weights_hash']``); ``sites``: {site: (neurons, (h, w) token grid)}."""
        store = Path(store)
        if not (store / "zarr.json").exists():
            raise StoreError(f"{store} is not a recording store: record it first (`workbench record --out {store}`)")
        root = zarr.open_group(str(store), mode="r+", use_consolidated=False)
        key = group_name(name)
        want = {"sites": {s: [int(j) for j in n] for s, (n, _) in sites.items()}, "grids": {s: list(g) for s, (_, g) in sites.items()},
                "steps": [int(t) for t in steps], "image_shape": list(image_shape), **about}  # fmt: skip
        if key in root:
            group = root[key]
            have = {k: group.attrs.get(k) for k in want}
            diff = [k for k in want if have[k] != want[k]]
            if diff:
                raise StoreError(
                    f"{store}/{key} holds maps made with other {', '.join(diff)}: give another maps name "
                    f"(--name), or the same sites, neurons, steps and model"
                )
            writer = cls(group)
            writer._repair()
            return writer
        group = root.create_group(key)
        for arr, dtype in (("text", str), ("set", str), ("seed", "int64"), ("done", "bool")):
            fill = "" if dtype is str else (False if dtype == "bool" else 0)
            group.create_array(arr, shape=(0,), chunks=(1 if arr == "done" else 1024,), dtype=dtype,
                               dimension_names=["map_prompt"], fill_value=fill)  # fmt: skip
        group.create_array("image", shape=(0, *image_shape), chunks=(1, *image_shape), dtype="uint8",
                           dimension_names=["map_prompt", "y_image", "x_image", "rgb"], fill_value=0)  # fmt: skip
        for site, (neurons, (h, w)) in sites.items():
            g = group.create_group(site)
            g.create_array("map", shape=(0, len(steps), len(neurons), h, w), chunks=(1, len(steps), len(neurons), h, w),
                           dtype="float16", dimension_names=["map_prompt", "map_step", "neuron", "y", "x"], fill_value=float("nan"))  # fmt: skip
            g.create_array("neuron", shape=(len(neurons),), dtype="int64", dimension_names=["neuron"], fill_value=-1)[:] = (
                np.asarray(neurons)
            )
        group.attrs.update({**want, "n": 0})  # last: the group is usable from here
        return cls(group)

    def _arrays(self):
        for name in ("text", "set", "seed", "done", "image"):
            yield self.group[name]
        for site in self.group.attrs["sites"]:
            yield self.group[site]["map"]

    def _repair(self) -> None:
        """Undo an interrupted extension: every prompt-long array back to the committed rows."""
        n = int(self.group.attrs["n"])
        for arr in self._arrays():
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))

    def rows(self, prompts) -> list[int]:
        """The rows of ``prompts`` (text, set, seed), appending the ones not yet here."""
        n = int(self.group.attrs["n"])
        have = {}
        if n:
            keys = zip(self.group["text"][:n], self.group["set"][:n], self.group["seed"][:n])
            have = {(str(t), str(s), int(d)): i for i, (t, s, d) in enumerate(keys)}
        new = [p for p in dict.fromkeys((p.text, p.set, int(p.seed)) for p in prompts) if p not in have]
        if new:
            m = n + len(new)
            for arr in self._arrays():
                arr.resize((m, *arr.shape[1:]))
            self.group["text"][n:m] = np.array([t for t, _, _ in new], dtype=object)
            self.group["set"][n:m] = np.array([s for _, s, _ in new], dtype=object)
            self.group["seed"][n:m] = np.array([d for _, _, d in new], dtype=np.int64)
            self.group.attrs["n"] = m  # last: commits the new rows
            have.update({k: n + i for i, k in enumerate(new)})
        return [have[(p.text, p.set, int(p.seed))] for p in prompts]

    def done(self) -> np.ndarray:
        return self.group["done"][: int(self.group.attrs["n"])]

    def write(self, row: int, image: np.ndarray, maps: dict[str, np.ndarray]) -> None:
        """One prompt's image (uint8) and maps ({site: (step, neuron, h, w)}); its done flag last."""
        self.group["image"][row] = image
        for site, m in maps.items():
            self.group[site]["map"][row] = m.astype(np.float16)
        self.group["done"][row] = True


def map_groups(store: str | Path) -> list[str]:
    """The maps groups a store folder holds (``maps``, ``maps-<name>``)."""
    root = zarr.open_group(str(store), mode="r", use_consolidated=False)
    return sorted(k for k, _ in root.groups() if k == PREFIX or k.startswith(PREFIX + "-"))


def open_maps(store: str | Path, name: str | None = None, allow_partial: bool = False) -> xr.DataTree:
    """One maps group as a DataTree: the root has ``image`` and the prompts, each site a child with
    ``map`` (map_prompt, map_step, neuron, y, x) and its neuron indices; lazily read."""
    key = group_name(name)
    path = Path(store) / key
    if not (path / "zarr.json").exists():
        have = map_groups(store) if (Path(store) / "zarr.json").exists() else []
        raise StoreError(f"{store} has no maps {key!r} (it has {have or 'none'}): record them with `workbench maps {store} ...`")
    attrs = dict(zarr.open_group(str(path), mode="r", use_consolidated=False).attrs)
    tree = xr.open_datatree(str(path), engine="zarr", chunks={}, consolidated=False)
    n = int(attrs["n"])
    tree = tree.isel(map_prompt=slice(0, n))
    done = tree["done"].values
    if not done.all() and not allow_partial:
        raise StoreError(
            f"{path}: {int((~done).sum())} of {n} prompts have no maps yet (a run was stopped): run the same maps command again"
        )
    root = tree.to_dataset().set_coords(["text", "set", "seed", "done"])
    tree.dataset = root.assign_coords({c: root[c].astype(object).load() for c in ("text", "set")})
    for site in attrs["sites"]:
        ds = tree[site].to_dataset().set_coords("neuron")
        tree[site].dataset = ds.assign_coords(map_step=("map_step", np.asarray(attrs["steps"])), neuron=ds["neuron"].load())
    tree.attrs.update(attrs)
    return tree
