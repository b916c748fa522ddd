"""Plotly figures of analysis and ablation outputs."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
import xarray as xr


def _attributes(ds: xr.Dataset) -> list[str]:
    """The judged attributes of an ablation result, as its unpruned baseline recorded them."""
    return list(next(iter(ds.attrs["baseline"].values()))["other_accuracy"])


def short_site(site: str) -> str:
    """'down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2' -> 'down.0.a0.tb0' (see ``SITE_AXIS``)."""
    return (
        site.replace(".attentions.", ".a").replace(".transformer_blocks.", ".tb").replace("_blocks", "").replace(".ff.net.2", "")
    )


#: what ``short_site``'s abbreviations mean, for every axis and legend that shows them
SITE_AXIS = "site (block.index, aN = attention N, tbN = transformer block N; FFN-2 unless named; hover: full path)"


def about(attrs: dict) -> str:
    """The setting a mask-derived figure shows, from its data's attrs: "'striped' vs 'plain', k = 2 %,
    t-hat = 10" (empty when the attrs say nothing)."""
    parts = []
    if attrs.get("target") is not None:
        parts.append(f"'{attrs['target']}'" + (f" vs '{attrs['reference']}'" if attrs.get("reference") else ""))
    if attrs.get("k") is not None:
        parts.append(f"k = {float(attrs['k']):g} %")
    if attrs.get("t_hat") is not None:
        t = int(attrs["t_hat"])
        parts.append("all UNet calls" if t < 0 else f"t-hat = {t}")
    if attrs.get("kind") not in (None, "skilled"):
        parts.append(str(attrs["kind"]))
    return ", ".join(parts)


def _titled(title: str, attrs: dict) -> str:
    extra = about(attrs)
    return f"{title}: {extra}" if extra else title


def density_bar(d: xr.Dataset, title: str | None = None) -> go.Figure:
    """Pruned share of each site's weight (paper Fig. 3 right, aggregated); the title names the masks'
    concept, reference, k and t-hat."""
    sites = [str(s) for s in d["site"].values]
    fig = go.Figure(go.Bar(x=[short_site(s) for s in sites], y=d["density"].values * 100, hovertext=sites))
    fig.update_layout(title=title or _titled("Skilled-neuron density per site", d.attrs), yaxis_title="% of the site's weights pruned",
                      xaxis_title=SITE_AXIS, template="plotly_white", height=400)  # fmt: skip
    return fig


def density_heatmap(dps: xr.DataArray, title: str | None = None) -> go.Figure:
    """density_per_step output as a (site x step) heatmap: when does a concept's circuit form?"""
    sites = [str(s) for s in dps["site"].values]
    fig = go.Figure(
        go.Heatmap(
            z=dps.values * 100,
            x=dps["step"].values,
            y=[short_site(s) for s in sites],
            colorscale="Viridis",
            colorbar={"title": "% of the site's<br>weights skilled"},
            customdata=[[s] * dps.sizes["step"] for s in sites],
            hovertemplate="%{customdata}<br>UNet call %{x}: %{z:.2f} %<extra></extra>",
        )  # fmt: skip
    )
    fig.update_layout(title=title or _titled("Skilled share per site and UNet call", dps.attrs), xaxis_title="UNet call (0 = noisiest)",
                      yaxis_title=SITE_AXIS, template="plotly_white", height=400)  # fmt: skip
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
    fig.update_layout(
        title=title, width=grid.shape[1] * scale + 40, height=grid.shape[0] * scale + 80, margin=dict(l=10, r=10, t=50, b=10)
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def before_after(before: dict, after: dict, concept: str) -> go.Figure:
    """Oracle readings before and after pruning: the concept's rate, degraded images, other attributes."""
    keys = [f"{concept} rate (target prompts)", "degraded images"] + [
        f"{a} accuracy (other prompts)" for a in before["other_accuracy"]
    ]
    b = [before["concept_rate"], before["degraded_rate"], *before["other_accuracy"].values()]
    a = [after["concept_rate"], after["degraded_rate"], *after["other_accuracy"].values()]
    fig = go.Figure(
        [go.Bar(name="before", x=keys, y=np.array(b) * 100), go.Bar(name="after pruning", x=keys, y=np.array(a) * 100)]
    )
    fig.update_layout(barmode="group", yaxis_title="%", title="What the oracle sees", template="plotly_white", height=420)
    return fig


def norm_histogram(dist: xr.DataArray, title: str | None = None) -> go.Figure:
    """norm_distribution output as small multiples (paper Fig. 4b-d): one histogram per prompt set on
    a shared axis, stacked, so no distribution hides another."""
    from plotly.subplots import make_subplots

    sets = [str(s) for s in dist["set"].values]
    fig = make_subplots(rows=len(sets), cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=sets)
    hi = float(np.nanpercentile(dist.values, 99.5)) if dist.size else 1.0
    for i, s in enumerate(sets, 1):
        fig.add_trace(go.Histogram(x=dist.sel(set=s).values, name=s, xbins=dict(start=0, end=hi, size=hi / 80), showlegend=False),
                      row=i, col=1)  # fmt: skip
        fig.update_yaxes(title_text="neurons", row=i, col=1)
    a = dist.attrs
    calls = "all UNet calls" if a.get("steps", "all") == "all" else f"UNet calls {a['steps']}"
    what = f"{a.get('family', 'ffn2')} sites ({a['sites']}), mean over {calls}" if "sites" in a else ""
    fig.update_xaxes(
        title_text=f"L2 norm of a neuron's input over tokens and prompts ({a.get('normalisation', 'wanda')})",
        row=len(sets),
        col=1,
    )
    fig.update_layout(title=title or "Neuron norms per prompt set" + (f": {what}" if what else ""), template="plotly_white",
                      height=160 + 150 * len(sets))  # fmt: skip
    return fig


def overlap_heatmap(mat: xr.DataArray, title: str = "Concept overlap (Jaccard of the skilled masks over all sites)") -> go.Figure:
    text = [[f"{v:.2f}" for v in row] for row in mat.values]
    fig = go.Figure(
        go.Heatmap(
            z=mat.values,
            x=list(mat["concept_2"].values),
            y=list(mat["concept"].values),
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            colorbar={"title": "Jaccard"},
        )  # fmt: skip
    )
    fig.update_layout(title=title, xaxis_title="concept", yaxis_title="concept", template="plotly_white", height=440)
    return fig


def labelled_grid(columns: dict[str, torch.Tensor], title: str = "", scale: int = 3, prompts: list[str] | None = None,
                  tiles: dict[str, list[str]] | None = None) -> go.Figure:  # fmt: skip
    """Image columns side by side, one label each: skilled vs unskilled vs random (Fig. 3 left),
    a t-hat strip (Fig. 5), before/after (Fig. 1). Row i of every column is the same prompt and seed:
    ``prompts`` labels the rows, ``tiles[column][i]`` is written on tile (i, column) (the judge's
    reading of that very image, so a reader can match tiles to a table's rates)."""
    labels = list(columns)
    n = min(len(v) for v in columns.values())
    imgs = torch.stack([columns[k][:n] for k in labels], dim=1).reshape(n * len(labels), *next(iter(columns.values())).shape[1:])
    fig = image_grid(imgs, cols=len(labels), title=title, scale=scale)
    h, w = imgs.shape[-2] + 2, imgs.shape[-1] + 2
    for j, lab in enumerate(labels):
        fig.add_annotation(x=j * w + w / 2, y=-4, text=lab, showarrow=False, yanchor="bottom", font={"size": 11})
        for i, text in enumerate((tiles or {}).get(lab, [])[:n]):
            fig.add_annotation(x=j * w + w / 2, y=i * h + h - 2, text=text, showarrow=False, yanchor="bottom", font={"size": 9},
                               bgcolor="rgba(255,255,255,0.8)")  # fmt: skip
    left = 10
    if prompts:
        left = min(260, 12 + 6 * max(len(t) for t in prompts[:n]))
        for i, text in enumerate(prompts[:n]):
            fig.add_annotation(x=-3, y=i * h + h / 2, text=text, showarrow=False, xanchor="right", font={"size": 10})
    fig.update_layout(margin=dict(l=left, r=10, t=80, b=10), width=fig.layout.width + left, plot_bgcolor="white")
    return fig


def tradeoff(ds: xr.Dataset, concept: str, family: str = "ffn2", kind: str = "skilled") -> go.Figure:
    """The k / t-hat trade-off (paper Fig. 4a): the concept's rate on target prompts (erasure,
    lower is better) and the mean accuracy of other attributes on other prompts (retention)."""
    from plotly.subplots import make_subplots

    sel = ds.sel(concept=concept, family=family, kind=kind)
    keep = sel[_attributes(ds)].to_array("attr").mean("attr")
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"'{concept}' rate on target prompts (erasure)", "other attributes on other prompts (retention)"),
    )
    for i, w in enumerate(sel["window"].values):
        colour = f"hsl({int(300 * i / max(1, sel.sizes['window'] - 1))},60%,45%)"
        fig.add_trace(
            go.Scatter(
                x=sel["k"].values,
                y=sel["concept_rate"].sel(window=w).values * 100,
                name=str(w),
                mode="lines+markers",
                line={"color": colour},
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(
                x=sel["k"].values,
                y=keep.sel(window=w).values * 100,
                name=str(w),
                mode="lines+markers",
                line={"color": colour},
                showlegend=False,
            ),
            1,
            2,
        )
    fig.update_xaxes(title_text="k (% of each weight row)", type="log")
    fig.update_yaxes(title_text="%", range=[0, 102])
    fig.update_layout(title="Sparsity and step window", legend_title="window", template="plotly_white", height=420)
    return fig


def metric_bars(ds: xr.Dataset, dim: str, title: str) -> go.Figure:
    """Grouped bars of the oracle's readings along one dimension of an ablation (e.g. family for
    the site ablation, kind for skilled vs unskilled vs random); other dimensions must be size 1."""
    sel = ds.squeeze(drop=False)
    metrics = {"concept rate": "concept_rate", "degraded": "degraded_rate", **{a: a for a in _attributes(ds)}}
    fig = go.Figure(
        [
            go.Bar(name=lab, x=[str(v) for v in ds[dim].values], y=np.ravel(sel[m].transpose(dim, ...).values) * 100)
            for lab, m in metrics.items()
        ]
    )
    fig.update_layout(barmode="group", title=title, yaxis_title="%", xaxis_title=dim, template="plotly_white", height=400)
    return fig


def per_step_curves(dps: xr.DataArray, title: str | None = None) -> go.Figure:
    """density_per_step as one line per site over UNet calls: when does each site's circuit form?"""
    fig = go.Figure(
        [
            go.Scatter(
                x=dps["step"].values, y=dps.sel(site=s).values * 100, name=short_site(str(s)), mode="lines", hovertext=str(s)
            )
            for s in dps["site"].values
        ]
    )
    fig.update_layout(title=title or _titled("Skilled share per UNet call", dps.attrs), xaxis_title="UNet call (0 = noisiest)",
                      yaxis_title="% of the site's weights skilled", legend_title=SITE_AXIS.split(" (")[0], template="plotly_white",
                      height=420)  # fmt: skip
    return fig


def sensitivity_bars(summary: xr.DataArray, title: str = "Sensitivity to the attack: concept neurons vs the others") -> go.Figure:
    """Mean sensitivity per site (and pooled), concept neurons beside the others (the P-ESD
    paper's Fig. 2 view)."""
    fig = go.Figure()
    sites = [short_site(str(s)) if s != "all" else "all sites" for s in summary["site"].values]
    for g in summary["group"].values:
        fig.add_trace(go.Bar(x=sites, y=summary.sel(group=g).values, name=f"{g} neurons"))
    fig.update_layout(title=title, yaxis_title="mean change of Wanda-scaled activation (site means)", barmode="group",
                      template="plotly_white")  # fmt: skip
    return fig


def activity_curves(act: xr.DataArray, title: str = "Concept neurons per UNet call: edited and attacked, as ratios to unedited",
                    ratio: bool = True) -> go.Figure:  # fmt: skip
    """The concept neurons' mean Wanda-scaled activation per step, one line per run (Fig. 3's
    deactivated-then-reactivated story as numbers). ``ratio``: each run over the unedited run, step by
    step (1 = unedited), since the raw activity falls several-fold over the calls and hides a
    few-percent effect of the edit; ``ratio=False`` draws the raw means."""
    base = act.sel(run="unedited") if ratio and "unedited" in act["run"].values else None
    fig = go.Figure()
    for run in act["run"].values:
        if base is not None and run == "unedited":
            continue
        y = act.sel(run=run) / base if base is not None else act.sel(run=run)
        fig.add_trace(go.Scatter(x=act["step"].values, y=y.values, mode="lines+markers", name=str(run)))
    if base is not None:
        fig.add_hline(y=1.0, line_dash="dot", annotation_text="unedited")
    fig.update_layout(title=title if base is not None or not ratio else "Concept neurons per UNet call", xaxis_title="UNet call (0 = noisiest)",
                      yaxis_title="activity / unedited's (same prompts, same call)" if base is not None else "mean Wanda-scaled activation",
                      template="plotly_white")  # fmt: skip
    return fig


def _grouped_bars(data: xr.DataArray, by: str, title: str, yaxis: str, name=str) -> go.Figure:
    """Bars per eraser, one trace per value of ``by``; over a ``seed`` dimension, the mean with its
    sd as error bars."""
    fig = go.Figure()
    for v in data[by].values:
        y = data.sel({by: v})
        err = dict(type="data", array=y.std("seed").values) if "seed" in y.dims else None
        y = y.mean("seed") if "seed" in y.dims else y
        fig.add_trace(go.Bar(x=list(data["eraser"].values), y=y.values, error_y=err, name=name(v)))
    fig.update_layout(title=title, yaxis_title=yaxis, barmode="group", template="plotly_white")
    return fig


def sensitivity_compare(
    ds: xr.Dataset, title: str = "Sensitivity to the attack, per eraser: concept neurons vs the others"
) -> go.Figure:
    """Pooled sensitivity of concept neurons beside the others, one group of bars per eraser
    (the P-ESD paper's ESD-vs-P-ESD view); with a ``seed`` dimension, the mean and its sd as bars."""
    return _grouped_bars(ds["sensitivity"], "group", title, "mean change of Wanda-scaled activation (site means)",
                         lambda g: f"{g} neurons")  # fmt: skip


def reactivation_bars(
    ds: xr.Dataset, title: str = "Concept neurons: unedited, edited, attacked (mean over UNet calls)"
) -> go.Figure:
    """Mean activity of the concept neurons in the three runs, one group of bars per eraser:
    deactivated by the edit (edited < unedited), woken by the attack (attacked > edited)."""
    return _grouped_bars(ds["activity"].mean("step"), "run", title, "mean Wanda-scaled activation")


def asr_heatmap(erasers: list[str], attacks: list[str], asr: list[list[float]], pre: list[float],
                title: str = "Attack success rate per eraser and attack (pooled over seeds)") -> go.Figure:  # fmt: skip
    """Eraser x attack heat map of the ASR (pre + post), with the pre-ASR (shown without attack) as
    the first column, so an attack's gain over the edit's own leak reads across a row."""
    z = [[p, *row] for p, row in zip(pre, asr)]
    text = [["-" if x != x else f"{x:.0%}" for x in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=["pre-ASR (no attack)", *attacks], y=erasers, text=text, texttemplate="%{text}",
                               zmin=0, zmax=1, colorscale="Reds", colorbar=dict(title="ASR")))  # fmt: skip
    fig.update_layout(title=title, template="plotly_white", yaxis=dict(autorange="reversed"))
    return fig


def asr_frontier(points: dict[str, list[tuple[str, float, float]]], budget: float,
                 title: str = "Attack success against harm: erasers compared at matched harm") -> go.Figure:  # fmt: skip
    """Per attack, each eraser's pooled ASR (pre + post; y, %) against its harm (x: worst drop, points), with
    the harm budget as a vertical line: an eraser left of it and low is robust at acceptable cost."""
    fig = go.Figure()
    for attack, pts in points.items():
        fig.add_trace(go.Scatter(x=[h for _, h, _ in pts], y=[100 * a for _, _, a in pts], mode="markers", name=attack,
                                 text=[e for e, _, _ in pts], hovertemplate="%{text}: harm %{x:.1f} pts, ASR %{y:.0f}%",
                                 marker=dict(size=10)))  # fmt: skip
    fig.add_vline(x=100 * budget, line_dash="dash", annotation_text=f"harm budget {100 * budget:g} pts")
    fig.update_layout(title=title, template="plotly_white", xaxis_title="worst drop of an attribute on other prompts (points)",
                      yaxis_title="ASR, pre + post (%)", yaxis_range=[-3, 103])  # fmt: skip
    return fig


def asr_curves(points: dict[str, dict[str, list[tuple[int, float]]]], title: str = "Attack success against budget") -> go.Figure:
    """ASR (pre + post, %) against the attack's budget, one panel per attack, one line per eraser."""
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    attacks = list(points)
    erasers = list(dict.fromkeys(e for per in points.values() for e in per))
    colour = {e: qualitative.Plotly[i % len(qualitative.Plotly)] for i, e in enumerate(erasers)}
    fig = make_subplots(rows=1, cols=len(attacks), subplot_titles=attacks, shared_yaxes=True)
    seen: set[str] = set()
    for i, attack in enumerate(attacks, start=1):
        for eraser, pts in points[attack].items():
            fig.add_trace(go.Scatter(x=[b for b, _ in pts], y=[100 * a for _, a in pts], mode="lines+markers", name=eraser,
                                     legendgroup=eraser, showlegend=eraser not in seen, line=dict(color=colour[eraser])),
                          row=1, col=i)  # fmt: skip
            seen.add(eraser)
        fig.update_xaxes(title_text="budget", row=1, col=i)
    fig.update_yaxes(title_text="ASR, pre + post (%)", range=[-3, 103], row=1, col=1)
    fig.update_layout(title=title, template="plotly_white")
    return fig


def benchmark_frontier(table, title: str = "Unlearning against retention, every toy concept") -> go.Figure:
    """UA (y) against the mean of IRA and CRA (x), one small marker per (concept, eraser) and one
    large per eraser's mean over concepts: up and right is better."""
    from plotly.colors import qualitative

    fig = go.Figure()
    for i, (eraser, rows) in enumerate(table.groupby("eraser", sort=False)):
        colour = qualitative.Plotly[i % len(qualitative.Plotly)]
        keep = (rows["IRA"] + rows["CRA"]) / 2
        fig.add_trace(go.Scatter(x=100 * keep, y=100 * rows["UA"], mode="markers", name=eraser, legendgroup=eraser,
                                 text=rows["concept"], hovertemplate=f"{eraser}, %{{text}}: retain %{{x:.0f}}%, UA %{{y:.0f}}%",
                                 marker=dict(size=7, color=colour, opacity=0.45)))  # fmt: skip
        fig.add_trace(go.Scatter(x=[100 * keep.mean()], y=[100 * rows["UA"].mean()], mode="markers", legendgroup=eraser,
                                 showlegend=False, hovertemplate=f"{eraser}, mean: retain %{{x:.0f}}%, UA %{{y:.0f}}%",
                                 marker=dict(size=16, color=colour, symbol="diamond", line=dict(width=1, color="black"))))  # fmt: skip
    fig.update_layout(title=title, template="plotly_white", xaxis_title="retain accuracy, mean of IRA and CRA (%)",
                      yaxis_title="unlearning accuracy UA (%)", yaxis_range=[-3, 103])  # fmt: skip
    return fig


def slug(title: str) -> str:
    """A file name for a figure title: '(d) k and t-hat trade-off' -> 'd-k-and-t-hat-trade-off'."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]


def write_images(figs: list, folder, width: int = 1000) -> dict[str, str]:
    """Static PNGs of titled figures (plotly's export through Kaleido, which drives a local
    Chrome or Chromium), for pages read without running anything. Returns {title: file name};
    empty, with a printed note, where no browser is there to draw them."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    import plotly.io as pio

    names = [f"{slug(title)}.png" for title, _ in figs]
    for _ in range(2):  # the browser has been seen to return without writing a file: look, and try once more
        for n in names:  # a file left from an earlier run must not pass for this one's
            (folder / n).unlink(missing_ok=True)
        try:  # one browser for all figures
            pio.write_images([f for _, f in figs], [folder / n for n in names], width=[max(width, int(f.layout.width or 0)) for _, f in figs],
                             height=[int(f.layout.height or 450) for _, f in figs])  # fmt: skip
        except Exception as err:  # no Chrome/Chromium, or kaleido missing: the HTML page still has every figure
            print(f"note: static figures skipped ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
                  "install Chromium (setup.sh --test does) or run `plotly_get_chrome`")  # fmt: skip
            return {}
        lost = [n for n in names if not (folder / n).is_file() or (folder / n).stat().st_size == 0]
        if not lost:
            return {title: n for (title, _), n in zip(figs, names)}
    print(f"note: the browser wrote no file for {lost}; those figures are left out of the page")
    return {title: n for (title, _), n in zip(figs, names) if n not in lost}


def write_html(path, title: str, intro_html: str, figs: list, provenance: str = ""):
    """One self-contained HTML page of titled figures (plotly.js inlined once: opens offline)."""
    import html
    from pathlib import Path

    parts = [
        f"<h2>{html.escape(t)}</h2>" + f.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"fig{i}")
        for i, (t, f) in enumerate(figs)
    ]
    prov = f"<h2>Provenance</h2><pre>{html.escape(provenance)}</pre>" if provenance else ""
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}} td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}
pre{{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}}</style></head><body>
<h1>{html.escape(title)}</h1>
{intro_html}
{"".join(parts)}
{prov}
</body></html>"""
    Path(path).write_text(doc)
    return Path(path)
