"""Figures of activation maps: P-ESD's Fig. 3 counterpart and the top images of a neuron.

Each tile is the generated image with the concept neurons' map laid over it (one colour scale for
the whole figure, in units of the unedited model's mean activity), the prompt on its row and,
where given, the judge's verdict under the tile.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from ..analysis.maps import neuron_maps, top_mapped, upsample
from .plots import short_site

COLOURS = "Inferno"


def _tile(fig: go.Figure, image: np.ndarray, heat: np.ndarray, row: int, col: int, zmax: float, show_scale: bool, unit: str):
    fig.add_trace(go.Image(z=image, hoverinfo="skip"), row=row, col=col)
    fig.add_trace(go.Heatmap(z=heat, zmin=0, zmax=zmax, colorscale=COLOURS, opacity=0.55, showscale=show_scale,
                             colorbar={"title": {"text": unit, "side": "right"}, "len": 0.8},
                             hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>"), row=row, col=col)  # fmt: skip


def map_grid(conditions: dict[str, tuple[xr.DataTree, xr.DataArray]], rows: list[int], title: str,
             verdicts: dict[str, list[bool]] | None = None, texts: dict[str, list[str]] | None = None,
             unit: str = "x unedited mean", scale: int = 4) -> go.Figure:  # fmt: skip
    """Rows = prompts (map_prompt indices, the same in every condition), columns = conditions
    ({label: (maps, concept_map)}), e.g. unedited / edited / attacked. ``verdicts[label][i]``: the
    judge's 'concept shown' for row i; ``texts[label][i]``: the prompt shown under a tile when a
    condition's prompts differ (an attack's)."""
    labels = list(conditions)
    fig = make_subplots(rows=len(rows), cols=len(labels), column_titles=labels, horizontal_spacing=0.02, vertical_spacing=0.06)
    zmax = max(float(np.nanpercentile(c.values[rows], 99)) for _, c in conditions.values())
    for i, r in enumerate(rows):
        for j, lab in enumerate(labels):
            maps, cmap = conditions[lab]
            _tile(fig, maps["image"].values[r], cmap.values[r], i + 1, j + 1, zmax, i == 0 and j == 0, unit)
            words = []
            if texts and lab in texts:
                words.append(texts[lab][i])
            elif j == 0:
                words.append(str(maps["text"].values[r]))
            if verdicts and lab in verdicts:
                words.append("concept shown" if verdicts[lab][i] else "not shown")
            axis = fig.get_subplot(i + 1, j + 1).xaxis
            axis.update(title={"text": " | ".join(words), "font": {"size": 10}, "standoff": 2})
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    side = int(next(iter(conditions.values()))[0]["image"].shape[1]) * scale
    fig.update_layout(title=title, width=max(600, 60 + side * len(labels)), height=120 + int(side * 1.25) * len(rows),
                      margin={"l": 10, "r": 10, "t": 90, "b": 10})  # fmt: skip
    return fig


def top_images(maps: xr.DataTree, site: str, neurons: list[int], k: int = 4, steps=None, scale: int = 4) -> go.Figure:
    """For each neuron (a row), the ``k`` mapped images where it is most active, its own map over
    each (colour: |activation| / its mean over all mapped prompts), the prompt under each tile."""
    fig = make_subplots(rows=len(neurons), cols=k, row_titles=[f"neuron {j}" for j in neurons], horizontal_spacing=0.02,
                        vertical_spacing=0.08)  # fmt: skip
    height, width = maps["image"].shape[1:3]
    for i, j in enumerate(neurons):
        act = neuron_maps(maps, site, [j], steps).mean(["map_step", "neuron"])
        act = upsample(act / float(act.mean()), height, width)
        top = top_mapped(maps, site, j, k, steps)
        zmax = float(np.nanpercentile(act.values, 99))
        for c, row in enumerate(int(r) for r in top["row"].values):
            _tile(fig, maps["image"].values[row], act.values[row], i + 1, c + 1, zmax, i == 0 and c == 0, "x its mean")
            fig.get_subplot(i + 1, c + 1).xaxis.update(
                title={"text": str(maps["text"].values[row]), "font": {"size": 10}, "standoff": 2}
            )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    side = int(height) * scale
    fig.update_layout(title=f"Top {k} mapped images of {len(neurons)} concept neurons, site {short_site(site)}",
                      width=max(600, 60 + side * k), height=120 + int(side * 1.3) * len(neurons), margin={"l": 10, "r": 40, "t": 90, "b": 10})  # fmt: skip
    return fig
