"""Where in the image neurons fire: activation maps read from a store's maps group (store.maps).

Pure functions on the DataTree ``open_maps`` returns (xarray in, xarray out). A map is a
neuron's input activation over the latent's token grid; its magnitude ``|x|`` is what the Wanda
norm sums (squared) over tokens, so the map is the spatial split of the statistic the masks use.
Sites sit at several resolutions: ``concept_map`` brings each to the image's size (each token
covers a block of pixels) before averaging them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def mapped_sites(maps: xr.DataTree) -> list[str]:
    return list(maps.wb.sites)


def neuron_maps(maps: xr.DataTree, site: str, neurons=None, steps=None) -> xr.DataArray:
    """|activation| (map_prompt, map_step, neuron, y, x) of one site, optionally a subset of its
    neurons (indices into the model's neurons) and UNet calls, as float32."""
    if site not in maps.children:
        raise KeyError(f"site {site!r} has no maps here: mapped sites are {mapped_sites(maps)}")
    da = abs(maps[site]["map"].astype(np.float32))
    if neurons is not None:
        missing = sorted(set(int(j) for j in np.atleast_1d(neurons)) - set(int(j) for j in da["neuron"].values))
        if missing:
            raise KeyError(f"neurons {missing[:5]} of {site} were not mapped: mapped are {list(da['neuron'].values)[:10]} ...")
        da = da.sel(neuron=np.atleast_1d(neurons))
    if steps is not None:
        da = da.sel(map_step=np.atleast_1d(steps))
    return da


def upsample(da: xr.DataArray, height: int, width: int) -> xr.DataArray:
    """Each token's value over the block of image pixels it covers (y, x -> y_image, x_image)."""
    fy, fx = height // da.sizes["y"], width // da.sizes["x"]
    if fy * da.sizes["y"] != height or fx * da.sizes["x"] != width:
        raise ValueError(f"a {da.sizes['y']} x {da.sizes['x']} grid does not divide a {height} x {width} image")
    data = np.repeat(np.repeat(np.asarray(da.values), fy, axis=da.get_axis_num("y")), fx, axis=da.get_axis_num("x"))
    dims = [{"y": "y_image", "x": "x_image"}.get(d, d) for d in da.dims]
    coords = {k: v for k, v in da.coords.items() if "y" not in v.dims and "x" not in v.dims}
    return xr.DataArray(data, dims=dims, coords=coords, attrs=da.attrs)


def site_scale(maps: xr.DataTree, neurons: dict | None = None, steps=None) -> dict[str, float]:
    """Each site's mean |activation| over every prompt, step and chosen neuron: the unit in which
    ``concept_map`` puts sites (and other conditions' maps) on one scale."""
    return {s: float(neuron_maps(maps, s, (neurons or {}).get(s), steps).mean()) for s in (neurons or mapped_sites(maps))}


def concept_map(
    maps: xr.DataTree, neurons: dict | None = None, steps=None, scale: dict[str, float] | None = None
) -> xr.DataArray:
    """Mean over sites, chosen neurons ({site: indices}, default every mapped one) and steps of
    |activation| / the site's scale, at the image's size: (map_prompt, y_image, x_image).

    ``scale`` (``site_scale`` of a reference condition, e.g. the unedited model's maps) makes maps of
    several conditions comparable: 1 = the reference's mean activity. By default each site is
    scaled by its own mean here."""
    sites = list(neurons) if neurons else mapped_sites(maps)
    scale = scale or site_scale(maps, neurons, steps)
    height, width = maps["image"].sizes["y_image"], maps["image"].sizes["x_image"]
    parts = []
    for s in sites:
        da = neuron_maps(maps, s, (neurons or {}).get(s), steps).mean(["map_step", "neuron"]) / scale[s]
        parts.append(upsample(da, height, width))
    out = sum(parts[1:], parts[0]) / len(parts)
    out.attrs.update(sites=sites, unit="mean |activation| / the reference's mean")
    return out.assign_coords(text=maps["text"], set=maps["set"], seed=maps["seed"])


def top_mapped(maps: xr.DataTree, site: str, neuron: int, k: int = 4, steps=None) -> xr.DataArray:
    """The ``k`` mapped prompts where one neuron is most active (mean |activation| over its map),
    largest first: (map_prompt) with text, set, seed and ``row`` (the map_prompt index)."""
    act = neuron_maps(maps, site, [neuron], steps).mean(["map_step", "neuron", "y", "x"])
    order = np.argsort(-act.values, kind="stable")[:k]
    return act.isel(map_prompt=order).assign_coords(
        row=("map_prompt", order),
        text=maps["text"].isel(map_prompt=order),
        set=maps["set"].isel(map_prompt=order),
        seed=maps["seed"].isel(map_prompt=order),
    )


def region_share(cmap: xr.DataArray, region: xr.DataArray) -> xr.DataArray:
    """Per prompt, the share of a map's mass inside a pixel region (bool, y_image x x_image per
    prompt): 'does the concept fire on the object or on the background'."""
    inside = (cmap * region).sum(["y_image", "x_image"])
    return inside / cmap.sum(["y_image", "x_image"])


def strongest_neurons(masks: xr.DataTree, per_site: int = 32, sites: list[str] | None = None) -> dict[str, list[int]]:
    """The concept neurons to map: per site, the ``per_site`` input columns holding most of the
    mask's entries (ConceptPrune's skilled weights), most first; sites with an empty mask left out."""
    out = {}
    for s in sites or masks.wb.sites:
        count = masks[s]["mask"].sum("row").values
        order = [int(j) for j in np.argsort(-count, kind="stable")[:per_site] if count[j] > 0]
        if order:
            out[s] = order
    return out
