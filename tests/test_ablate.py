"""Ablation sweeps: results as xarray, resumable without redoing finished cells."""

import numpy as np
import pytest

import workbench.evaluation.ablate as ablate_mod
from workbench.cli import main
from workbench.evaluation.ablate import Ablation, ablate, open_results
from workbench.models.toyworld import load_oracle
from workbench.prompts import get
from workbench.recording import record
from workbench.store import open_store

STEPS = 4


@pytest.fixture(scope="module")
def store_path(toy, tmp_path_factory):
    return record(
        toy, get("texture:striped"), tmp_path_factory.mktemp("abl") / "s.zarr", steps=STEPS, batch_size=16, progress=False
    )


@pytest.fixture(scope="module")
def tree(store_path):
    return open_store(store_path)


def test_interrupted_ablation_resumes_without_redoing_cells(toy, tree, tmp_path, monkeypatch):
    spec = Ablation(ks=[2.0, 10.0], windows=["all"], kinds=["skilled", "random"], steps=STEPS, n_per=1)
    oracle = load_oracle()
    calls = {"n": 0}
    real = ablate_mod.toy_evaluate

    def counting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1 + 2:  # baseline + 2 cells, then the "crash"
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ablate_mod, "toy_evaluate", counting)
    out = tmp_path / "abl.zarr"
    with pytest.raises(KeyboardInterrupt):
        ablate(toy, oracle, tree, spec, out, progress=False)
    assert int(open_results(out)["done"].sum()) == 1
    calls["n"] = -100  # no more crashes
    ds = ablate(toy, oracle, tree, spec, out, progress=False)
    assert calls["n"] == -100 + 4 - 1  # only the 3 missing cells ran; the baseline was kept
    assert bool(ds["done"].all()) and ds["concept_rate"].dims == ("concept", "family", "k", "window", "kind")
    assert np.isfinite(ds["concept_rate"].values).all() and "baseline" in ds.attrs
    dens = ds["density"].sel(concept="striped", family="ffn2", window="all")
    np.testing.assert_allclose(dens.sel(kind="random").values, dens.sel(kind="skilled").values, rtol=1e-12)
    with pytest.raises(ValueError, match="another ablation"):
        ablate(toy, oracle, tree, Ablation(ks=[5.0], windows=["all"], steps=STEPS), out, progress=False)
    import shutil

    shutil.rmtree(out / "target_other")  # as a store from before that metric existed
    with pytest.raises(ValueError, match="older workbench"):
        ablate(toy, oracle, tree, spec, out, progress=False)


def test_bad_ablation_specs(toy, tree, tmp_path):
    oracle = load_oracle()
    with pytest.raises(ValueError, match="unknown window"):
        ablate(toy, oracle, tree, Ablation(windows=["middle"], steps=STEPS), tmp_path / "a.zarr", progress=False)
    with pytest.raises(ValueError, match="no 'ffn1' sites"):
        ablate(toy, oracle, tree, Ablation(families=["ffn1"], windows=["all"], steps=STEPS), tmp_path / "b.zarr", progress=False)


def test_ablate_cli(store_path, tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "cli.zarr"
    assert (
        main(
            [
                "ablate",
                str(store_path),
                "--ks",
                "5",
                "--windows",
                "all",
                "--kinds",
                "skilled",
                "--n-per",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "concept_rate" in text and str(out) in text
    ds = open_results(out)
    base = ds.attrs["baseline"]["striped"]
    assert f"striped: concept rate {base['concept_rate']:.1%}; other prompts: shape {base['other_accuracy']['shape']:.1%}" in text
    # the cell and the baseline, recomputed here from the API: the same masks, pruned, the same oracle
    from workbench.analysis import concept_masks, density
    from workbench.editing import pruned
    from workbench.evaluation.toy import toy_evaluate
    from workbench.models import load_pipeline, weights_of

    toy, oracle, tree = load_pipeline("toy"), load_oracle(), open_store(store_path)
    masks = concept_masks(tree, weights_of(toy, tree), "striped", "plain", k=5, t_hat=None, window="all")
    unpruned = toy_evaluate(toy, oracle, None, ["striped"], n_per=1, steps=STEPS)
    with pruned(toy, masks):
        after = toy_evaluate(toy, oracle, None, ["striped"], n_per=1, steps=STEPS)
    cell = ds.sel(concept="striped", family="ffn2", k=5.0, window="all", kind="skilled")
    assert base["concept_rate"] == pytest.approx(unpruned.concept_rate)
    assert float(cell["concept_rate"]) == pytest.approx(after.concept_rate)
    assert float(cell["shape"]) == pytest.approx(after.other_accuracy["shape"])
    assert float(cell["density"]) == pytest.approx(float(density(masks)["overall"]))
    assert after.concept_rate < unpruned.concept_rate  # the cell measured a pruned model, not the baseline again


def test_union_cell_prunes_the_or_of_member_masks_and_judges_each_member(toy, tmp_path):
    """'striped+dotted' with reference 'plain,striped,dotted': each member against the other sets,
    masks OR-ed (paper A.5), one generation judged per member."""
    from workbench.analysis import concept_masks, density, union
    from workbench.models import weights_of

    path = record(toy, get("toy:textures"), tmp_path / "tex.zarr", steps=STEPS, batch_size=16, progress=False)
    tree = open_store(path)
    spec = Ablation(
        concepts=["striped+dotted"],
        reference="plain,striped,dotted",
        ks=[5.0],
        windows=["all"],
        kinds=["skilled"],
        steps=STEPS,
        n_per=1,
    )
    ds = ablate(toy, load_oracle(), tree, spec, tmp_path / "u.zarr", progress=False)
    w = weights_of(toy, tree)
    expected = union(
        concept_masks(tree, w, "striped", ["plain", "dotted"], k=5, t_hat=None, window="all"),
        concept_masks(tree, w, "dotted", ["plain", "striped"], k=5, t_hat=None, window="all"),
    )
    assert float(ds["density"].item()) == pytest.approx(float(density(expected)["overall"]))
    base = ds.attrs["baseline"]["striped+dotted"]
    assert set(base["per_value"]) == {"striped", "dotted"} and base["concept_rate"] > 0.5
    assert 0 <= float(ds["target_other"].item()) <= 1 and 0 <= base["target_other"] <= 1
    with pytest.raises(ValueError, match="leaves no set"):
        ablate(
            toy,
            load_oracle(),
            tree,
            Ablation(concepts=["plain"], reference="plain", windows=["all"], steps=STEPS),
            tmp_path / "x.zarr",
            progress=False,
        )


def test_toy_evaluate_reads_shapes_and_refuses_mixed_unions(toy):
    from workbench.evaluation.toy import attribute_of, toy_evaluate

    r = toy_evaluate(toy, load_oracle(), None, "circle", n_per=1, steps=STEPS)
    assert attribute_of("circle") == "shape" and r.target_images.shape[0] == 16 and r.other_images.shape[0] == 48
    assert 0 <= r.concept_rate <= 1 and set(r.other_accuracy) == {"shape", "colour", "texture", "scene"}
    with pytest.raises(ValueError, match="one attribute"):
        toy_evaluate(toy, load_oracle(), None, ["circle", "striped"], n_per=1, steps=STEPS)
    with pytest.raises(ValueError, match="no toy-world concept"):
        attribute_of("van_gogh")


def test_window_beyond_the_recorded_steps_fails_before_creating_a_store(toy, tree, tmp_path):
    with pytest.raises(ValueError, match="beyond the recorded steps"):
        ablate(toy, load_oracle(), tree, Ablation(windows=["first:10"], steps=STEPS), tmp_path / "w.zarr", progress=False)
    assert not (tmp_path / "w.zarr").exists()


def test_eval_images_are_generated_once_per_model_state(toy, monkeypatch):
    """The memo behind shared baselines: a hit only for the same weights and settings."""
    import torch

    import workbench.evaluation.generation as gen_mod
    import workbench.evaluation.toy as toy_mod
    from workbench.editing import pruned
    from workbench.models import module_of, select

    calls = []
    real = gen_mod.generate
    monkeypatch.setattr(gen_mod, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(gen_mod, "_EVAL_CACHE", type(gen_mod._EVAL_CACHE)())
    a = toy_mod.eval_images(toy, n_per=1, steps=2)
    b = toy_mod.eval_images(toy, n_per=1, steps=2)
    assert len(calls) == 1 and torch.equal(a, b)
    site = select(toy, "ffn2")[0]
    with pruned(toy, {site.name: np.ones(module_of(toy, site).weight.shape, bool)}):
        c = toy_mod.eval_images(toy, n_per=1, steps=2)
    assert len(calls) == 2 and not torch.equal(a, c)
    assert torch.equal(toy_mod.eval_images(toy, n_per=1, steps=2), a) and len(calls) == 2  # unpruned again: a hit
    toy_mod.eval_images(toy, n_per=1, steps=3)
    assert len(calls) == 3


def test_two_shards_measure_the_cells_of_one_process(toy, tree, store_path, tmp_path, monkeypatch, capsys):
    """`workbench ablate --shard 0/2` and `1/2` on one --out, at once, and the same as two tasks on a
    2-worker dask LocalCluster (`--dask local:2`): every cell equals the one-process sweep's, and the
    store is complete."""
    import os
    import subprocess
    import sys

    import torch

    spec = Ablation(ks=[2.0, 10.0], windows=["all"], kinds=["skilled", "random"], steps=STEPS, n_per=1)
    one = ablate(toy, load_oracle(), tree, spec, tmp_path / "one.zarr", progress=False)
    argv = [sys.executable, "-m", "workbench", "ablate", str(store_path), "--ks", "2,10", "--windows", "all", "--kinds",
            "skilled,random", "--n-per", "1", "--out", str(tmp_path / "two.zarr"), "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    procs = [subprocess.Popen([*argv, "--shard", f"{i}/2"], env=env, stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    monkeypatch.setenv("OMP_NUM_THREADS", env["OMP_NUM_THREADS"])  # the workers' arithmetic as this process's
    cli = argv[3:]
    cli[cli.index("--out") + 1] = str(tmp_path / "dask.zarr")
    assert main([*cli, "--dask", "local:2"]) == 0
    assert "ablate: 2 tasks on local:2 done" in capsys.readouterr().out
    for name in ("two", "dask"):
        two = open_results(tmp_path / f"{name}.zarr")
        assert bool(two["done"].all()) and two.attrs["baseline_concept_rate"] == pytest.approx(one.attrs["baseline_concept_rate"])
        for m in ("concept_rate", "shape", "texture", "fid", "density"):
            np.testing.assert_allclose(two[m].values, one[m].values, rtol=1e-5, atol=1e-7, err_msg=f"{name}: {m}")
        assert not list(tmp_path.glob(f"{name}.zarr.*.lock"))
