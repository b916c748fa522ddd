"""Plotly figures of analysis and ablation outputs."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
import xarray as xr


def _short(site: str) -> str:
    return site.replace(".attentions.", ".a").replace(".transformer_blocks.", ".tb").replace("_blocks", "").replace(".ff.net.2", "")


def density_bar(d: xr.Dataset, title: str = "Skilled-neuron density per site") -> go.Figure:
    """Pruned share of each site's weight (paper Fig. 3 right, aggregated)."""
    fig = go.Figure(go.Bar(x=[_short(s) for s in d["site"].values], y=d["density"].values * 100, hovertext=list(d["site"].values)))
    fig.update_layout(title=title, yaxis_title="% of the site's weights", xaxis_title="site", template="plotly_white", height=380)
    return fig


def density_heatmap(dps: xr.DataArray, title: str = "Skilled share per site and UNet call") -> go.Figure:
    """density_per_step output as a (site x step) heatmap: when does a concept's circuit form?"""
    fig = go.Figure(go.Heatmap(z=dps.values * 100, x=dps["step"].values, y=[_short(s) for s in dps["site"].values], colorscale="Viridis", colorbar={"title": "%"}))
    fig.update_layout(title=title, xaxis_title="UNet call (0 = noisiest)", template="plotly_white", height=380)
    return fig


def image_grid(images: torch.Tensor, cols: int = 8, title: str = "", scale: int = 3) -> go.Figure:
    """A grid of (N, 3, H, W) images in [0, 1]."""
    n, _, h, w = images.shape
    rows = int(np.ceil(n / cols))
    grid = np.ones((rows * (h + 2), cols * (w + 2), 3), dtype=np.uint8) * 255
    arr = (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = arr[i]
    fig = go.Figure(go.Image(z=grid))
    fig.update_layout(title=title, width=grid.shape[1] * scale + 40, height=grid.shape[0] * scale + 80, margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def before_after(before: dict, after: dict, concept: str) -> go.Figure:
    """Oracle readings before and after pruning: the concept's rate, degraded images, other attributes."""
    keys = [f"{concept} rate (target prompts)", "degraded images"] + [f"{a} accuracy (other prompts)" for a in before["other_accuracy"]]
    b = [before["concept_rate"], before["degraded_rate"], *before["other_accuracy"].values()]
    a = [after["concept_rate"], after["degraded_rate"], *after["other_accuracy"].values()]
    fig = go.Figure([go.Bar(name="before", x=keys, y=np.array(b) * 100), go.Bar(name="after pruning", x=keys, y=np.array(a) * 100)])
    fig.update_layout(barmode="group", yaxis_title="%", title="What the oracle sees", template="plotly_white", height=420)
    return fig


def norm_histogram(dist: xr.DataArray, title: str = "Neuron activation norms, target vs reference") -> go.Figure:
    """norm_distribution output as overlaid histograms (paper Fig. 4b-d)."""
    fig = go.Figure([go.Histogram(x=dist.sel(set=s).values, name=str(s), opacity=0.6, nbinsx=80) for s in dist["set"].values])
    fig.update_layout(barmode="overlay", title=title, xaxis_title="norm", template="plotly_white", height=380)
    return fig


def overlap_heatmap(mat: xr.DataArray, title: str = "Concept overlap (Jaccard)") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=mat.values, x=list(mat["concept_2"].values), y=list(mat["concept"].values), zmin=0, zmax=1, colorscale="Blues"))
    fig.update_layout(title=title, template="plotly_white", height=420)
    return fig
