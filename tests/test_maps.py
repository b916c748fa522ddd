"""Activation maps: recorded beside a store, checked against the raw inputs, resumable, read by the analysis."""

import numpy as np
import pytest
import torch

from workbench.analysis import concept_map, neuron_maps, strongest_neurons, top_mapped, upsample
from workbench.models.sites import select
from workbench.prompts import PromptSet, get
from workbench.recording import record, record_maps
from workbench.recording.hooks import capture_inputs
from workbench.store import StoreError, open_store
from workbench.store.maps import MapWriter, open_maps

STEPS = 4
CALLS = [0, 2]


def prompts(n=3):
    return PromptSet(get("texture:striped").prompts[:n])


@pytest.fixture(scope="module")
def mapped(toy, tmp_path_factory):
    path = tmp_path_factory.mktemp("maps") / "s.zarr"
    record(toy, prompts(), path, steps=STEPS, batch_size=3, progress=False)
    sites = open_store(path).attrs["sites"]
    chosen = {sites[0]: [0, 5, 17], sites[-1]: [3]}
    record_maps(toy, path, prompts(), chosen, steps=CALLS, n_steps=STEPS, batch_size=2, progress=False)
    return path, chosen


def test_maps_equal_the_sites_raw_inputs_on_the_token_grid(toy, mapped):
    path, chosen = mapped
    ps = prompts()
    gens = [torch.Generator("cpu").manual_seed(p.seed) for p in ps]
    out = {}

    def go():
        out["images"] = toy(
            [p.text for p in ps], num_inference_steps=STEPS, guidance_scale=1.5, generator=gens, output_type="np"
        ).images

    with torch.inference_mode():
        raw = capture_inputs(toy, list(chosen), go)  # {site: one (rows, tokens, width) tensor a UNet call}
    maps = open_maps(path)
    assert list(maps["text"].values) == [p.text for p in ps]
    # the images as generated (uint8); batches of another size round a rare pixel the other way
    diff = np.abs(maps["image"].values.astype(int) - (np.clip(out["images"], 0, 1) * 255).round().astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    n = len(ps)
    for site, neurons in chosen.items():
        m = maps[site]["map"].values  # (prompt, step, neuron, y, x) float16
        h, w = m.shape[-2:]
        assert raw[site][0].shape[1] == h * w
        for si, call in enumerate(CALLS):
            x = raw[site][call]  # [uncond rows, cond rows]
            for p in range(n):
                for ni, j in enumerate(neurons):
                    for tok in (0, h * w // 2 + 1, h * w - 1):
                        want = float(x[n + p, tok, j])
                        got = float(m[p, si, ni, tok // w, tok % w])
                        assert got == pytest.approx(want, rel=2e-3, abs=1e-4), (site, call, p, j, tok)


def test_a_killed_maps_run_resumes_to_the_same_bytes(toy, mapped, tmp_path, monkeypatch):
    path, chosen = mapped
    ps = prompts()
    for name in ("whole", "killed"):
        record(toy, ps, tmp_path / f"{name}.zarr", steps=STEPS, batch_size=3, progress=False)

    class Killed(BaseException):
        pass

    real, calls = MapWriter.write, []

    def dies_at_the_second(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return real(self, *a, **k)

    record_maps(toy, tmp_path / "whole.zarr", ps, chosen, steps=CALLS, n_steps=STEPS, batch_size=1, progress=False)
    monkeypatch.setattr(MapWriter, "write", dies_at_the_second)
    with pytest.raises(Killed):
        record_maps(toy, tmp_path / "killed.zarr", ps, chosen, steps=CALLS, n_steps=STEPS, batch_size=1, progress=False)
    with pytest.raises(StoreError, match="1 of 3 prompts have no maps yet|2 of 3 prompts have no maps yet"):
        open_maps(tmp_path / "killed.zarr")
    monkeypatch.setattr(MapWriter, "write", real)
    record_maps(toy, tmp_path / "killed.zarr", ps, chosen, steps=CALLS, n_steps=STEPS, batch_size=1, progress=False)
    a, b = open_maps(tmp_path / "whole.zarr"), open_maps(tmp_path / "killed.zarr")
    np.testing.assert_array_equal(a["image"].values, b["image"].values)
    for site in chosen:
        assert a[site]["map"].values.tobytes() == b[site]["map"].values.tobytes()


def test_the_store_ignores_its_maps_and_other_settings_are_refused(toy, mapped):
    path, chosen = mapped
    tree = open_store(path)
    assert not [k for k in tree.children if k.startswith("maps")]
    site = next(iter(chosen))
    with pytest.raises(StoreError, match="other sites"):
        record_maps(toy, path, prompts(), {site: [1, 2]}, steps=CALLS, n_steps=STEPS, progress=False)
    with pytest.raises(StoreError, match="no maps 'maps-esd'"):
        open_maps(path, "esd")
    with pytest.raises(ValueError, match="text encoder"):
        record_maps(toy, path, prompts(), {select(toy, "text.fc2")[0].name: [0]}, name="t", n_steps=STEPS, progress=False)


def test_concept_map_is_the_scaled_mean_of_the_upsampled_neuron_maps(mapped):
    path, chosen = mapped
    maps = open_maps(path)
    H, W = maps["image"].shape[1:3]
    by_hand = 0
    for site in chosen:
        m = np.abs(maps[site]["map"].values.astype(np.float32))  # (prompt, step, neuron, h, w)
        mean = m.mean(axis=(1, 2)) / m.mean()
        f = H // m.shape[-2]
        by_hand = by_hand + np.kron(mean, np.ones((1, f, f)))
    by_hand = by_hand / len(chosen)
    cmap = concept_map(maps)
    assert cmap.dims == ("map_prompt", "y_image", "x_image")
    np.testing.assert_allclose(cmap.values, by_hand, rtol=1e-5)
    # a reference's scale: the same maps against themselves read 1 on average per site
    one = concept_map(maps, {s: chosen[s] for s in list(chosen)[:1]})
    assert float(one.mean()) == pytest.approx(1.0, rel=1e-5)
    site = next(iter(chosen))
    top = top_mapped(maps, site, chosen[site][1], k=2)
    act = np.abs(maps[site]["map"].values[:, :, 1].astype(np.float32)).mean(axis=(1, 2, 3))
    assert list(top["text"].values) == [str(maps["text"].values[i]) for i in np.argsort(-act)[:2]]
    with pytest.raises(KeyError, match="were not mapped"):
        neuron_maps(maps, site, [999])
    with pytest.raises(ValueError, match="does not divide"):
        upsample(maps[site]["map"].isel(map_prompt=0, map_step=0, neuron=0), H + 1, W)


def test_strongest_neurons_rank_columns_by_their_masked_entries():
    import xarray as xr

    mask = np.zeros((4, 6), bool)
    mask[:, 2] = True
    mask[:2, 4] = True
    mask[0, 0] = True
    masks = xr.DataTree.from_dict(
        {"a": xr.Dataset({"mask": (("row", "neuron"), mask)}), "b": xr.Dataset({"mask": (("row", "neuron"), mask & False)})}
    )
    masks.attrs["sites"] = ["a", "b"]
    assert strongest_neurons(masks, per_site=2) == {"a": [2, 4]}
    assert strongest_neurons(masks, per_site=5) == {"a": [2, 4, 0]}


def test_the_maps_command_maps_the_strongest_columns_of_a_masks_file(toy, tmp_path, capsys):
    from workbench.analysis import load_masks
    from workbench.cli import main

    pool = get("texture:striped").prompts
    ps = PromptSet([p for p in pool if p.set == "striped"][:2] + [p for p in pool if p.set == "plain"][:2])
    store = tmp_path / "s.zarr"
    record(toy, ps, store, steps=STEPS, batch_size=4, progress=False)
    masks = tmp_path / "m.safetensors"
    assert (
        main(
            ["masks", str(store), "--target", "striped", "--reference", "plain", "--k", "5", "--t-hat", "2", "--out", str(masks)]
        )
        == 0
    )
    assert main(["maps", str(store), "--prompts", "texture:striped", "--limit", "2", "--masks", str(masks), "--per-site", "3",
                 "--calls", "0,1", "--quiet"]) == 0  # fmt: skip
    assert "2 prompts" in capsys.readouterr().out
    maps = open_maps(store)
    want = strongest_neurons(load_masks(masks), per_site=3)
    assert {s: list(maps[s]["neuron"].values) for s in maps.attrs["sites"]} == want
    assert list(maps["map_step"].values if "map_step" in maps.coords else maps[next(iter(want))]["map_step"].values) == [0, 1]
    assert main(["maps", str(store), "--prompts", "texture:striped", "--quiet"]) == 2  # neither --masks nor --site


def test_the_toy_foreground_is_the_drawn_objects_pixels():
    """On images the toy world's renderer draws, the object's pixels are known: drawn again with
    another scene (same jitter), only the background changes. The estimate must find them."""
    from workbench.models.toyworld import draw as d

    spec = d.sample_specs(16, generator=torch.Generator().manual_seed(0))
    other = (spec["scene"] + 1) % len(d.SCENES)
    a, b = (
        d.draw(spec["shape"], spec["colour"], spec["texture"], sc, generator=torch.Generator().manual_seed(1))
        for sc in (spec["scene"], other)
    )
    obj = ((a - b).abs().amax(1) < 1e-6).numpy()  # unchanged by the scene: the object
    est = d.foreground((a.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    iou = (est & obj).sum() / (est | obj).sum()
    assert 0.05 < obj.mean() < 0.6 and iou > 0.9, iou


def test_the_map_figures_show_the_maps_and_label_every_tile(mapped):
    from workbench.reports.maps import map_grid, top_images

    path, chosen = mapped
    maps = open_maps(path)
    cmap = concept_map(maps)
    fig = map_grid({"unedited": (maps, cmap), "edited": (maps, cmap * 0.5)}, [0, 2], "t", verdicts={"edited": [True, False]})
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 4 and len([t for t in fig.data if t.type == "image"]) == 4
    np.testing.assert_allclose(np.asarray(heat[1].z), cmap.values[0] * 0.5, rtol=1e-6)  # row 0, column 'edited'
    np.testing.assert_allclose(np.asarray(heat[2].z), cmap.values[2], rtol=1e-6)
    assert {t.zmax for t in heat} == {heat[0].zmax}  # one colour scale for the figure
    title = lambda r, c: fig.get_subplot(r, c).xaxis.title.text  # noqa: E731
    assert str(maps["text"].values[0]) in title(1, 1) and title(1, 2) == "concept shown" and title(2, 2) == "not shown"
    site = next(iter(chosen))
    top = top_images(maps, site, chosen[site][:2], k=2)
    assert len([t for t in top.data if t.type == "image"]) == 4


def test_labelled_grids_name_each_row_and_read_each_tile():
    from workbench.reports.plots import labelled_grid

    cols = {"unpruned": torch.zeros(2, 3, 8, 8), "pruned": torch.ones(2, 3, 8, 8)}
    fig = labelled_grid(
        cols, prompts=["a red circle with stripes", "a blue square"], tiles={"pruned": ["texture: plain", "texture: striped"]}
    )
    texts = [a.text for a in fig.layout.annotations]
    assert texts[:2] == ["unpruned", "pruned"] or {"unpruned", "pruned"} <= set(texts)
    assert {"a red circle with stripes", "a blue square", "texture: plain", "texture: striped"} <= set(texts)
    tile = next(a for a in fig.layout.annotations if a.text == "texture: striped")
    assert tile.x > 10 and tile.y > 10  # column 2, row 2
