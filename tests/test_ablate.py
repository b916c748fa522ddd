"""Ablation sweeps: results as xarray, resumable without redoing finished cells."""

import numpy as np
import pytest

import workbench.ablate as ablate_mod
from workbench.ablate import Ablation, ablate, open_results
from workbench.calibration import get
from workbench.recording import record
from workbench.store import open_store
from workbench.toyworld import load_oracle

STEPS = 4


@pytest.fixture(scope="module")
def store_path(toy, tmp_path_factory):
    return record(toy, get("texture:striped"), tmp_path_factory.mktemp("abl") / "s.zarr", steps=STEPS, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def tree(store_path):
    return open_store(store_path)


def test_interrupted_ablation_resumes_without_redoing_cells(toy, tree, tmp_path, monkeypatch):
    spec = Ablation(ks=[2.0, 10.0], windows=["first:2", "all"], kinds=["skilled", "random"], steps=STEPS, n_per=1)
    oracle = load_oracle()
    calls = {"n": 0}
    real = ablate_mod.toy_evaluate

    def counting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1 + 3:  # baseline + 3 cells, then the "crash"
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ablate_mod, "toy_evaluate", counting)
    out = tmp_path / "abl.zarr"
    with pytest.raises(KeyboardInterrupt):
        ablate(toy, oracle, tree, spec, out, progress=False)
    assert int(open_results(out)["done"].sum()) == 2
    calls["n"] = -100  # no more crashes
    ds = ablate(toy, oracle, tree, spec, out, progress=False)
    assert calls["n"] == -100 + 8 - 2  # only the 6 missing cells ran; the baseline was kept
    assert bool(ds["done"].all()) and ds["concept_rate"].dims == ("concept", "family", "k", "window", "kind")
    assert np.isfinite(ds["concept_rate"].values).all() and "baseline" in ds.attrs
    dens = ds["density"].sel(concept="striped", family="ffn2", window="all")
    np.testing.assert_allclose(dens.sel(kind="random").values, dens.sel(kind="skilled").values, rtol=1e-12)
    with pytest.raises(ValueError, match="another ablation"):
        ablate(toy, oracle, tree, Ablation(ks=[5.0], steps=STEPS), out, progress=False)


def test_bad_ablation_specs(toy, tree, tmp_path):
    oracle = load_oracle()
    with pytest.raises(ValueError, match="unknown window"):
        ablate(toy, oracle, tree, Ablation(windows=["middle"], steps=STEPS), tmp_path / "a.zarr", progress=False)
    with pytest.raises(ValueError, match="no 'ffn1' sites"):
        ablate(toy, oracle, tree, Ablation(families=["ffn1"], steps=STEPS), tmp_path / "b.zarr", progress=False)


def test_ablate_cli(store_path, tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "cli.zarr"
    assert main(["ablate", str(store_path), "--ks", "5", "--windows", "all", "--kinds", "skilled", "--n-per", "1", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "concept_rate" in text and str(out) in text
