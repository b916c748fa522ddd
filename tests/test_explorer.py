"""The Jupyter explorer: its views are the analysis functions' numbers, its controls change them, and
executed under nbclient its widget state (read back from the notebook) holds what the kernel drew."""

import base64
import os
import shutil
import subprocess

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from workbench.analysis import concept_masks, neuron_profile, norms, top_prompts
from workbench.models import weights_of
from workbench.prompts import PromptSet, get
from workbench.recording import record, record_maps
from workbench.reports.explorer import explore
from workbench.store import open_store

STEPS = 4
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def store(toy, tmp_path_factory):
    pool = get("texture:striped").prompts
    ps = PromptSet([p for p in pool if p.set == "striped"][:3] + [p for p in pool if p.set == "plain"][:3])
    path = tmp_path_factory.mktemp("explorer") / "s.zarr"
    record(toy, ps, path, steps=STEPS, batch_size=6, progress=False)
    return path


def values(model: dict, path: list) -> np.ndarray:
    """An array of a saved widget model: inline, or (plotly's typed arrays) a binary buffer that the
    notebook keeps base64-encoded beside the state, found by its path."""
    x = model["state"]
    for key in path:
        x = x[key]
    if isinstance(x, dict) and "dtype" in x:
        buf = next(b for b in model.get("buffers", []) if b["path"][: len(path)] == path)
        return np.frombuffer(base64.b64decode(buf["data"]), dtype=np.dtype(x["dtype"]))
    return np.asarray(x, dtype=float)


def test_the_views_are_the_analysis_and_the_controls_change_them(toy, store):
    tree = open_store(store)
    w = weights_of(toy, tree)
    ex = explore(store, w, target="striped", reference="plain")
    site = ex.site.value
    want = np.sort(
        norms(tree, "striped", sites=[site], steps=list(range(10 if STEPS > 10 else STEPS)))[site]["norm"].mean("step").values
    )
    np.testing.assert_allclose(np.asarray(ex.norms.data[0].x), want, rtol=1e-6)
    ex.window.value = (1, 1)  # one UNet call: the norms and the top neurons follow
    want = np.sort(norms(tree, "striped", sites=[site], steps=[1])[site]["norm"].mean("step").values)
    np.testing.assert_allclose(np.asarray(ex.norms.data[0].x), want, rtol=1e-6)
    counts = concept_masks(tree, w, "striped", "plain", k=2, t_hat=None, window=[1], sites=[site])[site]["mask"].values.sum(0)
    top = [int(j) for j in ex.top.data[0].x]
    assert list(ex.top.data[0].y) == sorted(counts, reverse=True)[: len(top)] and counts[top[0]] == counts.max() > 0
    ex.select(top[0])
    prof = neuron_profile(tree, w, site, [top[0]], "striped", "plain", k=2)
    np.testing.assert_allclose(np.asarray(ex.profile.data[0].y), prof["target"].sel(neuron=top[0]).values, rtol=1e-6)
    first = str(top_prompts(tree, site, [top[0]], k=1, steps=[1])["text"].values[0, 0])
    assert first in ex.prompts.value and "No map" in ex.map.layout.title.text
    before = np.asarray(ex.share.data[0].z).copy()
    ex.k.value = 10.0  # k changes the skilled share
    assert np.asarray(ex.share.data[0].z).sum() > before.sum()
    with pytest.raises(ValueError, match="two prompt sets"):
        explore(tree.isel(prompt=slice(0, 3)), w)


def test_a_mapped_neuron_shows_its_map(toy, store, tmp_path):
    import shutil

    path = tmp_path / "s.zarr"
    shutil.copytree(store, path)
    tree = open_store(path)
    w = weights_of(toy, tree)
    site = tree.attrs["sites"][0]  # the explorer's first site
    j = int(
        concept_masks(tree, w, "striped", "plain", k=2, t_hat=None, window=list(range(STEPS)), sites=[site])[site]["mask"]
        .values.sum(0)
        .argmax()
    )
    record_maps(toy, path, PromptSet(get("texture:striped").prompts[:2]), {site: [j]}, steps=[0], n_steps=STEPS, progress=False)
    ex = explore(path, w, target="striped", reference="plain")
    assert ex.site.value == site
    ex.select(j)
    assert [t.type for t in ex.map.data] == ["image", "heatmap"] and f"Neuron {j}" in ex.map.layout.title.text


def test_the_explorer_in_a_kernel_keeps_its_state_in_the_notebook(store):
    """Executed by nbclient with widget state stored: the slider's new value and the figure's data
    after it are in the notebook's metadata, as a saved notebook would show them."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import workbench as wb\nex = wb.explore({str(store)!r}, target='striped', reference='plain')\nex"
        ),
        nbformat.v4.new_code_cell("ex.window.value = (2, 2)"),
    ]
    NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True).execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    sliders = [m["state"] for m in state.values() if m["model_name"] == "IntRangeSliderModel"]
    assert [s["value"] for s in sliders] == [[2, 2]]
    shown = {
        c.removeprefix("IPY_MODEL_") for m in state.values() for c in m["state"].get("children", [])
    }  # what the boxes hold now
    figs = [m for k, m in state.items() if m["model_name"] == "AnyModel" and "_widget_layout" in m["state"] and k in shown]
    norm_fig = [f for f in figs if "Neuron norms" in str(f["state"]["_widget_layout"].get("title", {}).get("text", ""))]
    assert len(norm_fig) == 1 and "calls 2-2" in norm_fig[0]["state"]["_widget_layout"]["title"]["text"]
    tree = open_store(store)
    site = tree.attrs["sites"][0]
    want = np.sort(norms(tree, "striped", sites=[site], steps=[2])[site]["norm"].mean("step").values)
    np.testing.assert_allclose(values(norm_fig[0], ["_widget_data", 0, "x"]), want, rtol=1e-6)


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium not installed (setup.sh --test installs it)"
)
def test_the_exported_page_draws_offline_in_chromium(toy, store, tmp_path):
    """``export`` keeps the views as they are (a selected neuron's profile included) in a page that
    headless Chromium draws with no network: every figure rendered, the screenshot not blank."""
    from PIL import Image

    assert CHROMIUM, "chromium is missing: run `bash setup.sh --test`"
    ex = explore(store, weights_of(toy, open_store(store)), target="striped", reference="plain")
    opened = ex.neuron  # the drill-down opens on the strongest neuron: no empty axes in an export made right away
    assert opened == int(ex.column_counts().argmax()) and ex.profile.data
    ex.window.value = (1, 2)
    ex.select(int(ex.top.data[0].x[0]))
    page = ex.export(tmp_path / "explorer.html")
    text = page.read_text()
    assert "UNet calls 1-2" in text and f"neuron {ex.neuron}" in text and "Prompts that drive neuron" in text
    # no maps in this store: their panel is left out, with the line saying how to get them
    assert f"Not shown (no data): No map of neuron {ex.neuron} here (record one with `workbench maps" in text
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]  # fmt: skip
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout
    assert dom.count('class="plotly-graph-div') == 4 and dom.count('class="main-svg"') >= 4
    shot = tmp_path / "explorer.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,1800", f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180
    )
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert (pixels < 200).mean() > 0.02  # lines, bars, heat maps and text: not a blank page


def test_an_sae_shows_the_concepts_top_features_beside_the_neurons(toy, store, tmp_path):
    import shutil

    from workbench.analysis.features import feature_scores, unit_activations
    from workbench.recording.sae import SAEOptions, StoreSource, train_sae
    from workbench.recording.samples import SampleOptions, record_samples
    from workbench.store.saes import load_sae
    from workbench.store.samples import open_samples

    path = tmp_path / "s.zarr"
    shutil.copytree(store, path)
    site = "up_blocks.1.attentions.1.transformer_blocks.0"
    record_samples(toy, path, SampleOptions(sites=[site], steps=[0, 2], tokens=16), progress=False)
    train_sae(StoreSource(path, site), tmp_path / "sae", SAEOptions(k=4, expansion=2, epochs=2, batch_size=64), progress=False)
    ex = explore(path, weights_of(toy, open_store(path)), target="striped", reference="plain", sae=tmp_path / "sae")
    ex.window.value = (2, 3)  # the sampled calls inside the window: call 2 alone
    acts = unit_activations(open_samples(path), site, load_sae(tmp_path / "sae"))
    score = feature_scores(acts.sel(step=[2]), "striped", "plain").mean("step").values
    assert [int(f) for f in ex.features.data[0].x] == [int(f) for f in np.argsort(-score, kind="stable")[: ex.n_top]]
    np.testing.assert_allclose(np.asarray(ex.features.data[0].y), np.sort(score)[::-1][: ex.n_top], rtol=1e-5)
    assert "sampled calls 2-2" in ex.features.layout.title.text
    assert "Top SAE features" in ex.export(tmp_path / "page.html").read_text()
