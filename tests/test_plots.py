"""Figures say what they show: the setting in the title, units on every axis and colour bar, no
distribution hidden behind another, effects as ratios to the unedited model."""

import numpy as np
import xarray as xr

from workbench.reports import plots

SITES = ["down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2", "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2"]


def test_density_figures_name_the_setting_and_their_units():
    d = xr.Dataset({"density": ("site", [0.01, 0.03])}, coords={"site": SITES},
                   attrs={"target": "striped", "reference": "plain", "k": 2.0, "t_hat": 10, "kind": "skilled"})  # fmt: skip
    fig = plots.density_bar(d)
    assert fig.layout.title.text == "Skilled-neuron density per site: 'striped' vs 'plain', k = 2 %, t-hat = 10"
    assert fig.layout.xaxis.title.text == plots.SITE_AXIS and "%" in fig.layout.yaxis.title.text
    assert list(fig.data[0].x) == ["down.0.a0.tb0", "up.1.a2.tb0"] and list(fig.data[0].hovertext) == SITES
    dps = xr.DataArray(np.random.default_rng(0).random((2, 5)), dims=("site", "step"), coords={"site": SITES, "step": range(5)},
                       attrs={"target": "dotted", "reference": "plain", "k": 5.0, "kind": "unskilled"})  # fmt: skip
    heat = plots.density_heatmap(dps)
    assert heat.layout.title.text.endswith("'dotted' vs 'plain', k = 5 %, unskilled")
    assert "%" in heat.data[0].colorbar.title.text and heat.layout.yaxis.title.text == plots.SITE_AXIS
    assert plots.about({"t_hat": -1}) == "all UNet calls" and plots.about({}) == ""


def test_norms_are_small_multiples_not_overlaid():
    dist = xr.DataArray(np.random.default_rng(1).gamma(2.0, size=(3, 200)), dims=("set", "neuron_all"),
                        coords={"set": ["striped", "plain", "dotted"]}, attrs={"family": "ffn2", "sites": 16, "steps": "all"})  # fmt: skip
    fig = plots.norm_histogram(dist)
    assert len(fig.data) == 3 and len({t.yaxis for t in fig.data}) == 3  # one panel each
    assert all(t.opacity is None for t in fig.data) and fig.layout.barmode is None
    assert "16" in fig.layout.title.text


def test_activity_curves_plot_ratios_to_the_unedited_model():
    raw = np.array([[10.0, 5.0, 2.0], [9.0, 4.5, 1.8], [10.0, 5.5, 2.2]])  # a 5x decay over the calls
    act = xr.DataArray(raw, dims=("run", "step"), coords={"run": ["unedited", "edited", "attacked"], "step": [0, 1, 2]})
    fig = plots.activity_curves(act)
    assert [t.name for t in fig.data] == ["edited", "attacked"]
    np.testing.assert_allclose(fig.data[0].y, [0.9, 0.9, 0.9])  # a 10 % cut, flat, where raw means fall 5x
    np.testing.assert_allclose(fig.data[1].y, [1.0, 1.1, 1.1])
    assert "unedited" in fig.layout.yaxis.title.text
    rawfig = plots.activity_curves(act, ratio=False)
    assert len(rawfig.data) == 3 and list(rawfig.data[0].y) == [10.0, 5.0, 2.0]


def test_overlap_heatmap_prints_its_values():
    mat = xr.DataArray([[1.0, 0.25], [0.25, 1.0]], dims=("concept", "concept_2"),
                       coords={"concept": ["a", "b"], "concept_2": ["a", "b"]})  # fmt: skip
    fig = plots.overlap_heatmap(mat)
    assert fig.data[0].text[0][1] == "0.25" and fig.data[0].colorbar.title.text == "Jaccard"
    assert fig.layout.xaxis.title.text == "concept"
