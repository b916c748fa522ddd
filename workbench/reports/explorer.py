"""An explorer for Jupyter: pick a site, a step window, k and the two prompt sets of a store and see
the skilled share per site and step, the norm distributions of target against reference, the top
neurons; click a neuron for its per-step Wanda scores, the prompts that drive it and, when the store
has maps of it, where in the image it fires; given an SAE of a sampled site (``sae=``), the
features beside the neurons: the concept's top features by SAeUron's score in the window.

    import workbench as wb
    ex = wb.explore("stores/striped.zarr")   # the store's own model's weights, or weights=...
    ex                                       # displays the widget

Built from ipywidgets and plotly ``FigureWidget``s over the pure analysis functions; every view is
also an attribute (``ex.share``, ``ex.norms``, ``ex.top``, ``ex.profile``, ``ex.prompts``, ``ex.map``)
so a notebook can read what is shown; ``ex.export("page.html")`` writes them as they are now to a
page that opens offline. Works on a store of any model.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from ..analysis import concept_masks, density_per_step, neuron_profile, norms, top_prompts
from .plots import short_site

KS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


class Explorer:
    """The widget and its state (see the module docstring)."""

    def __init__(self, tree: xr.DataTree, weights: dict, target: str | None = None, reference: str | None = None,
                 maps: xr.DataTree | None = None, k: float = 2.0, top: int = 20, features: xr.DataArray | None = None):  # fmt: skip
        import ipywidgets as w

        self.tree, self.weights, self.maps, self.n_top, self.acts = tree, weights, maps, top, features
        info = tree.wb.site_info
        self.sites = [s for s in tree.wb.sites if info[s]["component"] == "unet"]
        if not self.sites:
            raise ValueError("this store has no UNet sites to explore (text-encoder sites have no steps)")
        sets = list(dict.fromkeys(str(s) for s in tree["set"].values))
        if len(sets) < 2:
            raise ValueError(f"the explorer compares two prompt sets; this store has {sets}: record a reference set too")
        n = int(tree.sizes["step"])
        self.site = w.Dropdown(options=[(short_site(s), s) for s in self.sites], description="site")
        self.window = w.IntRangeSlider(value=(0, min(9, n - 1)), min=0, max=n - 1, description="UNet calls")
        self.k = w.SelectionSlider(options=list(KS), value=min(KS, key=lambda x: abs(x - k)), description="k %")
        self.target = w.Dropdown(options=sets, value=target or sets[0], description="target")
        self.reference = w.Dropdown(options=sets, value=reference or sets[-1], description="reference")
        self.share = self.norms = self.top = self.profile = self.map = self.features = None
        self.prompts = w.HTML()
        self.neuron: int | None = None
        self._boxes = {
            "share": w.Box(),
            "norms": w.Box(),
            "top": w.Box(),
            "profile": w.Box(),
            "map": w.Box(),
            "features": w.Box(),
        }
        self._put("profile", go.Figure(layout={"title": "Click a neuron above", "height": 300}))
        self._put("map", go.Figure(layout={"title": "Maps: record them with `workbench maps`", "height": 300}))
        for ctl in (self.target, self.reference, self.k):
            ctl.observe(lambda _c: self.refresh(), names="value")
        for ctl in (self.site, self.window):
            ctl.observe(lambda _c: self.refresh(share=False), names="value")
        b = self._boxes
        controls = w.HBox([w.VBox([self.target, self.reference]), w.VBox([self.site, self.window, self.k])])
        self.widget = w.VBox(
            [controls, w.HBox([b["share"], b["norms"]]), b["top"], w.HBox([b["profile"], b["map"]]), b["features"], self.prompts]
        )
        self.refresh()
        counts = self.column_counts()
        if counts.size and counts.max() > 0:  # the drill-down opens on the strongest neuron, not on empty axes
            self.select(int(counts.argmax()))

    # -- views --------------------------------------------------------------------------------
    def _put(self, name: str, fig: go.Figure) -> go.FigureWidget:
        """Show ``fig`` as view ``name``: a new FigureWidget each time, so that the widget state a
        saved notebook keeps (plotly keeps a FigureWidget's first data there) is what is shown."""
        fw, old = go.FigureWidget(fig), getattr(self, name)
        if old is not None:
            old.close()  # its model leaves the kernel and the saved state
        setattr(self, name, fw)
        self._boxes[name].children = (fw,)
        return fw

    @property
    def steps(self) -> list[int]:
        lo, hi = self.window.value
        return list(range(lo, hi + 1))

    def refresh(self, share: bool = True) -> None:
        """Recompute every view from the controls (the share heatmap only when the sets or k change)."""
        if self.target.value == self.reference.value:
            self.prompts.value = "<b>Choose two different prompt sets.</b>"
            return
        if share:
            self._share()
        self._norms()
        self._top()
        if self.acts is not None:
            self._features()
        if self.neuron is not None:
            self.select(self.neuron)

    def _share(self) -> None:
        d = density_per_step(self.tree, self.weights, self.target.value, self.reference.value, k=self.k.value, sites=self.sites)
        fig = go.Figure(go.Heatmap(z=100 * d.values, x=d["step"].values, y=[short_site(s) for s in self.sites], colorscale="Reds",
                                   colorbar={"title": "% of W"}, hovertemplate="%{y}, call %{x}: %{z:.2f} %<extra></extra>"))  # fmt: skip
        fig.update_layout(title=f"Skilled share per site and UNet call, k = {self.k.value:g} %, {self.target.value} vs {self.reference.value}",
                          xaxis_title="UNet call", yaxis_title="site", height=320)  # fmt: skip
        self._put("share", fig)

    def _norm(self, prompt_set: str) -> np.ndarray:
        site = self.site.value
        return norms(self.tree, prompt_set, sites=[site], steps=self.steps)[site]["norm"].mean("step").values

    def _norms(self) -> None:
        fig = go.Figure()
        for name, colour in ((self.target.value, "#b2182b"), (self.reference.value, "#2166ac")):
            x = np.sort(self._norm(name))
            fig.add_trace(go.Scatter(x=x, y=np.arange(1, x.size + 1) / x.size, mode="lines", name=name, line={"color": colour}))
        fig.update_layout(title=f"Neuron norms at {short_site(self.site.value)}, calls {self.steps[0]}-{self.steps[-1]} (cumulative)",
                          xaxis_title="norm (mean over the calls)", yaxis_title="share of neurons", xaxis_type="log", height=320)  # fmt: skip
        self._put("norms", fig)

    def column_counts(self) -> np.ndarray:
        """Entries of each input column in the skilled mask of the chosen site, k and window."""
        site = self.site.value
        m = concept_masks(self.tree, self.weights, self.target.value, self.reference.value, k=self.k.value, t_hat=None,
                          window=self.steps, sites=[site])  # fmt: skip
        return m[site]["mask"].values.sum(0)

    def _top(self) -> None:
        counts = self.column_counts()
        order = [int(j) for j in np.argsort(-counts, kind="stable")[: self.n_top] if counts[j] > 0]
        fig = go.Figure(go.Bar(x=[str(j) for j in order], y=[int(counts[j]) for j in order], marker_color="#b2182b"))
        fig.update_layout(title=f"Top neurons of {short_site(self.site.value)}: skilled weights per input column (click one)",
                          xaxis_title="neuron", yaxis_title="skilled entries", xaxis_type="category", height=320)  # fmt: skip
        self._put("top", fig).data[0].on_click(self._clicked)

    def _features(self) -> None:
        """The concept's top SAE features at the sampled calls inside the window (all sampled calls
        if none is), by SAeUron's score of target against reference."""
        from ..analysis.features import feature_scores

        sampled = [int(t) for t in self.acts["step"].values]
        calls = [t for t in sampled if t in self.steps] or sampled
        score = feature_scores(self.acts.sel(step=calls), self.target.value, self.reference.value).mean("step").values
        order = np.argsort(-score, kind="stable")[: self.n_top]
        fig = go.Figure(go.Bar(x=[str(int(f)) for f in order], y=score[order], marker_color="#762a83"))
        fig.update_layout(title=f"Top SAE features at {short_site(self.acts.attrs.get('site', ''))}, sampled calls {calls[0]}-{calls[-1]}: "
                          f"SAeUron's score, {self.target.value} vs {self.reference.value}", xaxis_title="feature",
                          yaxis_title="share on target - share on reference", xaxis_type="category", height=320)  # fmt: skip
        self._put("features", fig)

    def _clicked(self, trace, points, _state) -> None:
        if points.point_inds:
            self.select(int(trace.x[points.point_inds[0]]))

    def select(self, neuron: int) -> None:
        """Show one neuron: its per-step Wanda scores, the prompts that drive it, its map."""
        self.neuron, site = int(neuron), self.site.value
        prof = neuron_profile(
            self.tree, self.weights, site, [self.neuron], self.target.value, self.reference.value, k=self.k.value
        )
        fig = go.Figure()
        for name, colour in (("target", "#b2182b"), ("reference", "#2166ac")):
            fig.add_trace(go.Scatter(x=prof["step"].values, y=prof[name].sel(neuron=self.neuron).values, name=name,
                                     mode="lines+markers", line={"color": colour}))  # fmt: skip
        skilled = prof["step"].values[prof["skilled"].sel(neuron=self.neuron).values]
        fig.update_layout(title=f"Neuron {self.neuron}: Wanda score per UNet call (skilled at {len(skilled)} calls)",
                          xaxis_title="UNet call", yaxis_title="n_t[j] x mean |W_ij|", height=300)  # fmt: skip
        self._put("profile", fig)
        top = top_prompts(self.tree, site, [self.neuron], k=8, steps=self.steps)
        rows = "".join(
            f"<tr><td>{html.escape(str(t))}</td><td>{html.escape(str(s))}</td><td>{a:.3g}</td></tr>"
            for t, s, a in zip(top["text"].values[0], top["set"].values[0], top["activation"].values[0])
        )
        self.prompts.value = (f"<b>Prompts that drive neuron {self.neuron} most (calls {self.steps[0]}-{self.steps[-1]})</b>"
                              f"<table><tr><th>prompt</th><th>set</th><th>activation</th></tr>{rows}</table>")  # fmt: skip
        self._map()

    def _map(self) -> None:
        from ..analysis.maps import neuron_maps, top_mapped, upsample

        site, j = self.site.value, self.neuron
        fig = go.Figure(layout={"height": 300})
        if self.maps is None or site not in self.maps.children or j not in set(int(x) for x in self.maps[site]["neuron"].values):
            fig.update_layout(title=f"No map of neuron {j} here (record one with `workbench maps --site ... --neuron {j}`)")
        else:
            row = int(top_mapped(self.maps, site, j, k=1)["row"].values[0])
            act = neuron_maps(self.maps, site, [j]).mean(["map_step", "neuron"])
            img = self.maps["image"].values[row]
            fig.add_trace(go.Image(z=img))
            fig.add_trace(go.Heatmap(z=upsample(act, img.shape[0], img.shape[1]).values[row], opacity=0.55, colorscale="Inferno",
                                     colorbar={"title": "|x|"}))  # fmt: skip
            fig.update_layout(title=f"Neuron {j} over its top mapped image: {self.maps['text'].values[row]}")
        self._put("map", fig)

    def export(self, path) -> Path:
        """The views as they are now in one self-contained HTML page (plotly.js inlined: it opens
        offline, on a code host's preview, in any browser): the controls' values, every figure, the
        prompts table. A notebook's embedded widget state would need the widget manager from a CDN;
        this page needs nothing."""
        from .plots import write_html

        lo, hi = self.window.value
        chosen = f", neuron {self.neuron}" if self.neuron is not None else ""
        about = (f"<p>target <b>{html.escape(self.target.value)}</b>, reference <b>{html.escape(self.reference.value)}</b>, "
                 f"site <b>{html.escape(self.site.value)}</b>, UNet calls {lo}-{hi}, k = {self.k.value:g} %{chosen}</p>")  # fmt: skip
        figs, empty = [], []
        for name in ("share", "norms", "top", "profile", "map", "features"):
            if getattr(self, name) is None:
                continue
            fig = go.Figure(getattr(self, name))
            if fig.data:
                figs.append((fig.layout.title.text or name, fig))
            else:  # a panel with no data is left out; its title says how to get the data
                empty.append(html.escape(fig.layout.title.text or name))
        if empty:
            about += "<p>Not shown (no data): " + "; ".join(empty) + "</p>"
        prov = json.dumps(self.tree.attrs.get("provenance", {}), indent=1, default=str)
        return write_html(
            path, "Explorer: " + self.target.value + " vs " + self.reference.value, about + self.prompts.value, figs, prov
        )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def explore(store, weights: dict | None = None, target: str | None = None, reference: str | None = None,
            maps: str | None | bool = None, k: float = 2.0, sae: str | Path | None = None) -> Explorer:  # fmt: skip
    """An ``Explorer`` on a store (a path or an opened DataTree). ``weights`` default to those of
    the model the store was recorded with (loaded from its model id, no download); ``maps``: a maps
    group's name, True for the default one, or None to use the default one if the store has it;
    ``sae``: an SAE folder of a site the store's token samples hold (`workbench sae`): its features
    are shown beside the neurons."""
    from ..store import open_store
    from ..store.maps import map_groups, open_maps

    tree = open_store(store) if not isinstance(store, xr.DataTree) else store
    if weights is None:
        from ..models import load_pipeline, weights_of

        weights = weights_of(load_pipeline(tree.wb.provenance["model_id"], device="cpu"), tree)
    m = None
    if not isinstance(store, xr.DataTree) and maps is not False:
        have = map_groups(store)
        name = None if maps in (None, True) else maps
        if (maps is None and "maps" in have) or maps not in (None, False):
            m = open_maps(store, name)
    acts = None
    if sae is not None:
        from ..analysis.features import unit_activations
        from ..store.saes import load_sae
        from ..store.samples import open_samples

        if isinstance(store, xr.DataTree):
            raise ValueError("give the store as a path with sae=: its token samples are read from the folder")
        model = load_sae(sae)
        acts = unit_activations(open_samples(store), model.site, model)
    return Explorer(tree, weights, target, reference, m, k, features=acts)
