"""Analysis against a plain dense implementation of the paper's equations on random stores."""

import numpy as np
import pytest

from workbench.analysis import (
    concept_masks,
    density,
    density_per_step,
    jaccard,
    load_masks,
    norm_distribution,
    norms,
    overlap_matrix,
    overlap_per_step,
    save_masks,
    sweep,
    union,
    unpack,
)
from workbench.models.sites import Site
from workbench.prompts import Prompt, PromptSet
from workbench.recording import Recording
from workbench.store import StoreWriter, open_store

STEPS = 6
SITES = [Site("a.ff.net.2", "ffn2", "unet", "a.ff.net.2", 40), Site("b.ff.net.2", "ffn2", "unet", "b.ff.net.2", 24)]
OUT = {"a.ff.net.2": 12, "b.ff.net.2": 8}


def _random_store(path):
    """Write a store with random statistics (no model): sets 'star' and 'ref' of 5 prompts, 'other' of 3."""
    rng = np.random.default_rng(0)
    prompts = PromptSet([Prompt(f"p{i}", s, i) for s, n in (("star", 5), ("ref", 5), ("other", 3)) for i in range(n)])
    w = StoreWriter.open(path, {"model_id": "random"}, SITES, ("sumsq", "sumsq_unit"), chunk=4)
    idx = w.add_prompts(prompts)
    for lo in range(0, len(idx), 4):
        run = idx[lo : lo + 4]
        stats = {
            s.name: {k: rng.gamma(2.0, 1.0, (len(run), 2, STEPS, s.width)).astype(np.float32) for k in ("sumsq", "sumsq_unit")}
            for s in SITES
        }
        w.write(run, Recording(stats, list(np.linspace(999, 0, STEPS)), {s.name: 9 for s in SITES}, ("uncond", "cond")))
    w.finish()
    weights = {s.name: rng.normal(size=(OUT[s.name], s.width)).astype(np.float32) for s in SITES}
    return weights


@pytest.fixture(scope="module", params=["reductions", "raw"])
def random_store(tmp_path_factory, request):
    """The random store; every test runs twice: with the store's per-set reductions, and reading the
    raw statistics."""
    path = tmp_path_factory.mktemp("rand") / "r.zarr"
    weights = _random_store(path)
    tree = open_store(path)
    assert "reductions" in tree.children  # written when the store was finished
    return (tree if request.param == "reductions" else tree.drop_nodes("reductions")), weights


def dense_norm(tree, site, sets, stat, branches):
    sel = np.isin(tree["set"].values.astype(str), sets)
    b = [list(tree["branch"].values).index(x) for x in branches]
    x = tree[site][stat].values[sel][:, b]  # (prompts, branches, steps, neurons)
    return np.sqrt(x.astype(np.float64).sum((0, 1)))


def dense_mask(W, nt, nr, k, steps, kind="skilled"):
    """The paper's equations, one step at a time, with a full sort of each row."""
    out = np.zeros(W.shape, bool)
    keep = max(1, int(np.floor(W.shape[1] * k / 100 + 1e-9)))
    for t in steps:
        s_star = np.abs(W) * nt[t][None, :]
        s_ref = np.abs(W) * nr[t][None, :]
        order = np.argsort(-s_star, axis=1, kind="stable")[:, :keep]
        top = np.zeros(W.shape, bool)
        np.put_along_axis(top, order, True, axis=1)
        out |= top & ((s_star > s_ref) if kind == "skilled" else (s_star < s_ref))
    return out


@pytest.mark.parametrize("k,t_hat,kind", [(2.5, 1, "skilled"), (10, 3, "skilled"), (25, 6, "unskilled"), (100, 2, "skilled")])
def test_masks_equal_dense_paper_equations(random_store, k, t_hat, kind):
    tree, W = random_store
    m = concept_masks(tree, W, "star", "ref", k=k, t_hat=t_hat, kind=kind)
    for s in SITES:
        nt = dense_norm(tree, s.name, ["star"], "sumsq", ["cond"])
        nr = dense_norm(tree, s.name, ["ref"], "sumsq", ["cond"])
        want = dense_mask(W[s.name], nt, nr, k, range(t_hat), kind)
        np.testing.assert_array_equal(m[s.name]["mask"].values, want)
    assert m.attrs["k"] == k and m.attrs["t_hat"] == t_hat


def test_authors_mode_pools_branches_of_unit_normalised_tokens(random_store):
    tree, W = random_store
    n = norms(tree, "star", "authors")
    for s in SITES:
        np.testing.assert_allclose(
            n[s.name]["norm"].values, dense_norm(tree, s.name, ["star"], "sumsq_unit", ["uncond", "cond"]), rtol=1e-6
        )
    m = concept_masks(tree, W, "star", "ref", k=10, t_hat=4, normalisation="authors")
    for s in SITES:
        nt = dense_norm(tree, s.name, ["star"], "sumsq_unit", ["uncond", "cond"])
        nr = dense_norm(tree, s.name, ["ref"], "sumsq_unit", ["uncond", "cond"])
        np.testing.assert_array_equal(m[s.name]["mask"].values, dense_mask(W[s.name], nt, nr, 10, range(4)))


def test_authors_mode_keeps_int_k_d_entries_like_the_authors_code(random_store):
    """2 % of 40 and of 24 neurons is 0.8 and 0.48 entries: the authors' int() keeps none, the
    default keeps one per row."""
    tree, W = random_store
    authors = concept_masks(tree, W, "star", "ref", k=2, t_hat=4, normalisation="authors")
    plain = concept_masks(tree, W, "star", "ref", k=2, t_hat=4)
    assert all(int(authors[s.name]["mask"].sum()) == 0 for s in SITES)
    assert all(0 < int(plain[s.name]["mask"].sum()) <= 4 * OUT[s.name] for s in SITES)  # one a row, per step
    sw = sweep(tree, W, "star", "ref", ks=[2, 10], t_hats=[4], normalisation="authors")
    for s in SITES:
        assert int(sw[s.name]["count"].sel(k=2.0, t_hat=4)) == 0 < int(sw[s.name]["count"].sel(k=10.0, t_hat=4))


def test_windows_all_and_last(random_store):
    tree, W = random_store
    s = SITES[0]
    nt = dense_norm(tree, s.name, ["star"], "sumsq", ["cond"])
    nr = dense_norm(tree, s.name, ["ref"], "sumsq", ["cond"])
    m_all = concept_masks(tree, W, "star", "ref", k=5, t_hat=None, window="all")
    np.testing.assert_array_equal(m_all[s.name]["mask"].values, dense_mask(W[s.name], nt, nr, 5, range(STEPS)))
    m_last = concept_masks(tree, W, "star", "ref", k=5, t_hat=None, window=("last", 2))
    np.testing.assert_array_equal(m_last[s.name]["mask"].values, dense_mask(W[s.name], nt, nr, 5, [STEPS - 2, STEPS - 1]))


def test_sweep_equals_one_setting_at_a_time(random_store):
    tree, W = random_store
    ks, t_hats = [2.5, 5, 10, 50], [1, 2, 4, 6]
    sw = sweep(tree, W, "star", "ref", ks=ks, t_hats=t_hats)
    for k in ks:
        for t in t_hats:
            one = concept_masks(tree, W, "star", "ref", k=k, t_hat=t)
            for s in SITES:
                got = unpack(sw, s.name, k, t)
                np.testing.assert_array_equal(got, one[s.name]["mask"].values)
                assert int(sw[s.name]["count"].sel(k=k, t_hat=t)) == int(got.sum())


def test_analysis_reads_lazily(random_store):
    tree, W = random_store
    import dask.array as da

    assert isinstance(tree[SITES[0].name]["sumsq"].data, da.Array)
    norms(tree, "star")  # computes the small sums (one compute for every site); the store stays lazy
    concept_masks(tree, W, "star", "ref", k=5, t_hat=2)
    assert isinstance(tree[SITES[0].name]["sumsq"].data, da.Array)


def test_clear_errors(random_store):
    tree, W = random_store
    for k in (0, -1, 100.5):
        with pytest.raises(ValueError, match="out of range"):
            concept_masks(tree, W, "star", "ref", k=k, t_hat=2)
    with pytest.raises(ValueError, match=f"beyond the recorded steps.*{STEPS}"):
        concept_masks(tree, W, "star", "ref", k=2, t_hat=STEPS + 1)
    with pytest.raises(ValueError, match="not in this store.*star"):
        concept_masks(tree, W, "nudity", "ref", k=2, t_hat=2)
    with pytest.raises(ValueError, match="no weight given"):
        concept_masks(tree, {}, "star", "ref", k=2, t_hat=2)
    with pytest.raises(ValueError, match="no 'sum' statistic|unknown normalisation"):
        norms(tree, "star", "plain")


def test_missing_statistic_is_named(tmp_path):
    path = tmp_path / "s.zarr"
    w = StoreWriter.open(path, {"model_id": "random"}, SITES[:1], ("sumsq",), chunk=2)
    idx = w.add_prompts(PromptSet([Prompt("x", "star", 0), Prompt("y", "ref", 0)]))
    stats = {SITES[0].name: {"sumsq": np.ones((2, 1, 2, 40), np.float32)}}
    w.write(idx, Recording(stats, [1.0, 0.0], {}, ("cond",)))
    w.finish()
    with pytest.raises(ValueError, match="no 'sumsq_unit' statistic"):
        norms(open_store(path), "star", "authors")


def test_union_density_overlap_and_io(random_store, tmp_path):
    tree, W = random_store
    a = concept_masks(tree, W, "star", "ref", k=10, t_hat=3)
    b = concept_masks(tree, W, "other", "ref", k=10, t_hat=3)
    u = union(a, b)
    for s in SITES:
        np.testing.assert_array_equal(u[s.name]["mask"].values, a[s.name]["mask"].values | b[s.name]["mask"].values)
    d = density(a, total_params=10_000)
    counts = [int(a[s.name]["mask"].values.sum()) for s in SITES]
    np.testing.assert_array_equal(d["count"].values, counts)
    assert float(d["of_model"]) == sum(counts) / 10_000
    assert (d.attrs["target"], d.attrs["reference"], d.attrs["k"], d.attrs["t_hat"]) == ("star", "ref", 10.0, 3)  # for titles
    j = jaccard(a, b)
    ia = sum(int((a[s.name]["mask"].values & b[s.name]["mask"].values).sum()) for s in SITES)
    ib = sum(int((a[s.name]["mask"].values | b[s.name]["mask"].values).sum()) for s in SITES)
    assert float(j["total"]) == pytest.approx(ia / ib)
    mat = overlap_matrix({"star": a, "other": b})
    assert mat.sel(concept="star", concept_2="other") == pytest.approx(ia / ib) and mat.sel(concept="star", concept_2="star") == 1
    per = overlap_per_step(tree, W, {"star": ("star", "ref"), "other": ("other", "ref")}, k=10)
    assert per.sizes["step"] == STEPS and np.allclose(per.sel(concept="star", concept_2="star"), 1)
    for t in (0, 4):  # off the diagonal: the Jaccard of the two concepts' dense per-step masks, pooled over sites
        ms = {c: [dense_mask(W[s.name], dense_norm(tree, s.name, [c], "sumsq", ["cond"]), dense_norm(tree, s.name, ["ref"], "sumsq", ["cond"]), 10, [t]) for s in SITES]
              for c in ("star", "other")}  # fmt: skip
        inter = sum(int((x & y).sum()) for x, y in zip(ms["star"], ms["other"]))
        union_ = sum(int((x | y).sum()) for x, y in zip(ms["star"], ms["other"]))
        assert 0 < inter < union_
        assert float(per.sel(step=t, concept="star", concept_2="other")) == pytest.approx(inter / union_)
        assert float(per.sel(step=t, concept="other", concept_2="star")) == pytest.approx(inter / union_)
    dps = density_per_step(tree, W, "star", "ref", k=10)
    nt = dense_norm(tree, SITES[1].name, ["star"], "sumsq", ["cond"])
    nr = dense_norm(tree, SITES[1].name, ["ref"], "sumsq", ["cond"])
    assert float(dps.sel(site=SITES[1].name, step=4)) == pytest.approx(dense_mask(W[SITES[1].name], nt, nr, 10, [4]).mean())
    dist = norm_distribution(tree, ["star", "ref"])
    assert dist.shape == (2, sum(s.width for s in SITES))
    for suffix in (".safetensors", ".zarr"):
        save_masks(a, tmp_path / f"m{suffix}")
        back = load_masks(tmp_path / f"m{suffix}")
        for s in SITES:
            np.testing.assert_array_equal(back[s.name]["mask"].values, a[s.name]["mask"].values)
        assert float(back.attrs["k"]) == 10


def test_sensitivity_against_a_hand_computation(random_store):
    from workbench.analysis import concept_activity, concept_neurons, sensitivity, sensitivity_summary

    tree, W = random_store
    same = sensitivity(tree, tree, W, "star", "star")
    for s in same.attrs["sites"]:
        assert np.all(same[s]["sensitivity"].values == 0)  # nothing changes: zero everywhere
    sens = sensitivity(tree, tree, W, "ref", "star", t_hat=3)
    site = SITES[0].name
    col = np.abs(W[site]).mean(0)
    a = dense_norm(tree, site, ["ref"], "sumsq", ["cond"])[:3] * col
    b = dense_norm(tree, site, ["star"], "sumsq", ["cond"])[:3] * col
    want = ((b - a) / a.mean(1, keepdims=True)).mean(0)
    np.testing.assert_allclose(sens[site]["sensitivity"].values, want, rtol=1e-5)
    masks = concept_masks(tree, W, "star", "ref", k=10, t_hat=3)
    concept = concept_neurons(masks)
    c = masks[site]["mask"].values.any(0)
    assert c.any() and (~c).any()
    summary = sensitivity_summary(sens, concept)
    assert float(summary.sel(site=site, group="concept")) == pytest.approx(want[c].mean(), rel=1e-5)
    assert float(summary.sel(site=site, group="other")) == pytest.approx(want[~c].mean(), rel=1e-5)
    # skilled columns score higher on 'star' than on 'ref' at some step: on average they gain
    assert float(summary.sel(site="all", group="concept")) > float(summary.sel(site="all", group="other"))
    act = concept_activity({"ref": (tree, "ref"), "star": (tree, "star")}, W, concept)
    assert act.dims == ("run", "step") and list(act["run"].values) == ["ref", "star"]
    per_site = [(dense_norm(tree, s.name, ["star"], "sumsq", ["cond"]) * np.abs(W[s.name]).mean(0))[:, masks[s.name]["mask"].values.any(0)].mean(1)
                for s in SITES if masks[s.name]["mask"].values.any()]  # fmt: skip
    np.testing.assert_allclose(act.sel(run="star").values, np.mean(per_site, 0), rtol=1e-5)


def test_top_entries_rank_as_float64_even_where_float32_blurs_the_boundary():
    """Rows built with near-ties at the n-th place (scores 1e-9 apart in float64, equal in float32):
    the fast float32 partition must hand those rows to float64 and pick what a full sort picks."""
    from workbench.analysis.masks import top_entries

    rng = np.random.default_rng(3)
    rows, width, keeps = 64, 300, [1, 6, 30, 299]
    w = np.abs(rng.standard_normal((rows, width))).astype(np.float32)
    n = rng.random(width) + 0.5
    for i in range(0, rows, 2):  # in every other row, the n-th and (n+1)-th scores nearly tie
        order = np.argsort(-(w[i] * n))
        for m in keeps[:-1]:
            a, b = order[m - 1], order[m]
            n[b] = n[a] * float(w[i, a]) / float(w[i, b]) * (1 - 1e-12 * (1 + i))
    got = top_entries(w, n, keeps)
    exact = w.astype(np.float64) * n[None, :]
    blurred = 0
    for m, top in zip(keeps, got):
        order = np.argsort(-exact, axis=1, kind="stable")[:, :m]
        want = np.zeros_like(top)
        np.put_along_axis(want, order, True, axis=1)
        np.testing.assert_array_equal(top, want, err_msg=f"n={m}")
        s32 = w * n.astype(np.float32)[None, :]
        blurred += int(np.sum(np.sort(s32, axis=1)[:, width - m] == np.sort(s32, axis=1)[:, width - m - 1]))
    assert blurred > 0  # float32 alone could not have told these rows apart


def test_top_prompts_and_a_neurons_profile_against_a_hand_computation(random_store):
    from workbench.analysis import neuron_profile, prompt_activation, top_prompts

    tree, W = random_store
    site = SITES[0].name
    x = tree[site]["sumsq"].values.astype(np.float64)  # (prompt, branch, step, neuron)
    cond = list(tree["branch"].values).index("cond")
    want = np.sqrt(x[:, cond, 1:4].sum(1))  # steps 1-3
    act = prompt_activation(tree, site, steps=slice(1, 4))
    np.testing.assert_allclose(act.transpose("prompt", "neuron").values, want, rtol=1e-6)
    top = top_prompts(tree, site, [3, 7], k=4, steps=slice(1, 4))
    for j in (3, 7):
        order = np.argsort(-want[:, j], kind="stable")[:4]
        assert list(top["prompt"].sel(neuron=j).values) == list(tree["prompt"].values[order])
        np.testing.assert_allclose(top["activation"].sel(neuron=j).values, want[order, j], rtol=1e-6)
        assert list(top["text"].sel(neuron=j).values) == list(tree["text"].values[order])
    only = top_prompts(tree, site, [3], k=2, prompt_set="ref")
    assert set(only["set"].values.ravel()) == {"ref"}
    with pytest.raises(ValueError, match="not in this store"):
        top_prompts(tree, "nowhere", [0])
    prof = neuron_profile(tree, W, site, [0, 5, 9], "star", "ref", k=10)
    col = np.abs(W[site]).mean(0)
    nt, nr = dense_norm(tree, site, ["star"], "sumsq", ["cond"]), dense_norm(tree, site, ["ref"], "sumsq", ["cond"])
    np.testing.assert_allclose(prof["target"].values, nt[:, [0, 5, 9]] * col[[0, 5, 9]], rtol=1e-5)
    np.testing.assert_allclose(prof["reference"].values, nr[:, [0, 5, 9]] * col[[0, 5, 9]], rtol=1e-5)
    per_step = np.stack([dense_mask(W[site], nt, nr, 10, [t]).any(0) for t in range(STEPS)])
    np.testing.assert_array_equal(prof["skilled"].values, per_step[:, [0, 5, 9]])
    # the union over every step of the profile's skilled steps is the concept mask's columns at t_hat = all
    full = concept_masks(tree, W, "star", "ref", k=10, t_hat=STEPS)[site]["mask"].values.any(0)
    every = neuron_profile(tree, W, site, np.arange(W[site].shape[1]), "star", "ref", k=10)["skilled"].values.any(0)
    np.testing.assert_array_equal(every, full)


def test_the_neuron_command_lists_the_top_prompts(tmp_path, capsys):
    import json

    from workbench.analysis import top_prompts
    from workbench.cli import main

    store = tmp_path / "r.zarr"
    _random_store(store)
    assert main(["neuron", str(store), "--site", SITES[1].name, "--neuron", "2,4", "--top", "3", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = top_prompts(open_store(store), SITES[1].name, [2, 4], k=3)
    assert [r["prompt"] for r in got["top"]["4"]] == [int(p) for p in want["prompt"].sel(neuron=4).values]
    assert main(["neuron", str(store), "--site", "nowhere", "--neuron", "1"]) == 2
    assert "not in this store" in capsys.readouterr().err


def test_the_wb_accessor_reads_a_store_and_masks_in_one_place(tmp_path):
    """``tree.wb``: sites in order, their families, the provenance, masks as a dict; a tree that
    names no sites says so."""
    import xarray as xr

    from workbench.analysis import masks_tree

    masks = masks_tree({"b.ff.net.2": np.eye(2, dtype=bool), "a.ff.net.2": np.zeros((2, 3), dtype=bool)})
    assert masks.wb.sites == ["b.ff.net.2", "a.ff.net.2"]  # the order given, not sorted
    assert list(masks.wb.masks()) == ["b.ff.net.2", "a.ff.net.2"] and masks.wb.masks()["b.ff.net.2"].dtype == bool
    tree = xr.DataTree(xr.Dataset(attrs={"sites": ["x", "y"], "site_info": {"x": {"family": "ffn2"}, "y": {"family": "ffn1"}},
                                         "provenance": {"model_id": "toy"}}))  # fmt: skip
    assert tree.wb.of_family("ffn1") == ["y"] and tree.wb.provenance == {"model_id": "toy"}
    with pytest.raises(ValueError, match="names no sites"):
        _ = xr.DataTree().wb.sites
