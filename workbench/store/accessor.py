"""``tree.wb``: what a store, a masks tree or any tree the analysis returns says about itself, read
in one place (xarray's accessor mechanism): ``sites`` (ordered site names), ``site_info`` (family,
component, width per site), ``provenance`` (how a store was recorded), ``of_family(name)`` and,
for a masks tree, ``masks()`` as {site: bool array}. Registered when ``workbench.store`` loads.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


@xr.register_datatree_accessor("wb")
class WorkbenchAccessor:
    """The ``wb`` namespace of a DataTree (module docstring)."""

    def __init__(self, tree: xr.DataTree):
        self._tree = tree

    @property
    def sites(self) -> list[str]:
        """The site names, in their recorded order."""
        try:
            return list(self._tree.attrs["sites"])
        except KeyError:
            raise ValueError("this tree names no sites: pass a store (open_store), masks or an analysis result") from None

    @property
    def site_info(self) -> dict[str, dict]:
        """Family, component and width of each site (stores)."""
        return dict(self._tree.attrs.get("site_info") or {})

    @property
    def provenance(self) -> dict:
        """How the store was recorded: model id, weights hashes, scheduler, steps, guidance, dtype, ..."""
        return dict(self._tree.attrs.get("provenance") or {})

    def of_family(self, family: str) -> list[str]:
        """The sites of one family ('ffn2', ...), in order."""
        info = self.site_info
        return [s for s in self.sites if info.get(s, {}).get("family") == family]

    def masks(self) -> dict[str, np.ndarray]:
        """A masks tree as {site: (row, neuron) bool array}."""
        return {s: np.asarray(self._tree[s]["mask"].values, dtype=bool) for s in self.sites}
