"""Masks as data: Zarr (with provenance) and safetensors (one bool tensor per site's module path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr
from safetensors.numpy import load_file, save_file


def save_masks(masks: xr.DataTree, path: str | Path) -> Path:
    """Write masks to a Zarr store (``.zarr``) or a safetensors file (``.safetensors``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    attrs = {k: (v if isinstance(v, (str, int, float, list, bool)) else str(v)) for k, v in masks.attrs.items()}
    if path.suffix == ".safetensors":
        tensors = {s: np.ascontiguousarray(masks[s]["mask"].values, dtype=bool) for s in masks.wb.sites}
        save_file(tensors, str(path), metadata={"workbench": json.dumps(attrs)})
    else:
        out = masks.copy()
        out.attrs = attrs
        out.to_zarr(str(path), mode="w", zarr_format=3)
    return path


def masks_tree(arrays: dict, sites: list[str] | None = None) -> xr.DataTree:
    """Masks as the analysis holds them: {site: (row, neuron) bool} (an edit's ``masks``, a
    safetensors file's tensors) to one group per site with ``mask``, and ``sites`` in its attrs."""
    tree = xr.DataTree.from_dict(
        {s: xr.Dataset({"mask": (("row", "neuron"), np.asarray(t).astype(bool))}) for s, t in arrays.items()}
    )
    tree.attrs["sites"] = list(sites or arrays)
    return tree


def load_masks(path: str | Path) -> xr.DataTree:
    """Read masks written by save_masks."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no masks at {path}: compute them with `workbench masks` or save_masks()")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            meta = json.loads((f.metadata() or {}).get("workbench", "{}"))
        tensors = load_file(str(path))
        tree = masks_tree(tensors, meta.get("sites"))
        tree.attrs.update({k: v for k, v in meta.items() if k != "sites"})
        return tree
    return xr.open_datatree(str(path), engine="zarr").load()
