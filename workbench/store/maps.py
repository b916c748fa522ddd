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

from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from .core import StoreError
from .rows import PromptRows, create_prompt_arrays, reopened, store_root

PREFIX = "maps"


def group_name(name: str | None = None) -> str:
    """``maps`` or ``maps-<name>``: where one condition's maps live inside a store."""
    if name in (None, "", PREFIX):
        return PREFIX
    if "/" in name or name.startswith("."):
        raise StoreError(f"maps name {name!r} must be a plain name (no '/'), e.g. 'esd' or 'attacked'")
    return f"{PREFIX}-{name}"


class MapWriter(PromptRows):
    """Creates, resumes and fills one maps group (its rows: ``store.rows``)."""

    @classmethod
    def open(cls, store: str | Path, name: str | None, sites: dict[str, tuple[list[int], tuple[int, int]]], steps: list[int],
             image_shape: tuple[int, int, int], about: dict) -> MapWriter:  # fmt: skip
        """Create the group, or reopen one made with the same sites, neurons, grids, steps and
        weights (``about['weights_hash']``); ``sites``: {site: (neurons, (h, w) token grid)}."""
        root = store_root(store)
        key = group_name(name)
        want = {"sites": {s: [int(j) for j in n] for s, (n, _) in sites.items()}, "grids": {s: list(g) for s, (_, g) in sites.items()},
                "steps": [int(t) for t in steps], "image_shape": list(image_shape), **about}  # fmt: skip
        refuse = f"{store}/{key} holds maps made with other {{diff}}: give another maps name (--name), or the same sites, neurons, steps and model"
        group = reopened(root, key, want, refuse)
        if group is not None:
            writer = cls(group)
            writer.repair()
            return writer
        group = root.create_group(key)
        create_prompt_arrays(group, "map_prompt")
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

    def data_arrays(self):
        yield self.group["image"]
        for site in self.group.attrs["sites"]:
            yield self.group[site]["map"]

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
