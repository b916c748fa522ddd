"""Features beside neurons: block-output sites, token samples (exact, resumable, within budget),
SAEs trained from them (SAELens's format, resumable), their analysis, and feature ablation."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.analysis.features import auroc, feature_map, feature_scores, top_units, unit_activations
from workbench.models.hooks import Hook, hooks
from workbench.models.sites import module_of, select, weight_of
from workbench.prompts import PromptSet, get
from workbench.recording import record
from workbench.recording.sae import ArraySource, SAEOptions, StoreSource, train_sae
from workbench.recording.samples import SampleOptions, record_samples
from workbench.store import StoreError, open_store
from workbench.store.saes import load_sae
from workbench.store.samples import open_samples, token_positions

STEPS = 3
BLOCK = "up_blocks.1.attentions.1.transformer_blocks.0"
FFN = "mid_block.attentions.0.transformer_blocks.0.ff.net.2"
HELPER = Path(__file__).parent / "helpers" / "kill_at.py"


def prompts():
    s = get("texture:striped").prompts
    return PromptSet([p for p in s if p.set == "striped"][:4] + [p for p in s if p.set == "plain"][:4])


@pytest.fixture(scope="module")
def sampled(toy, tmp_path_factory):
    path = tmp_path_factory.mktemp("samples") / "s.zarr"
    record(toy, prompts(), path, sites=FFN, steps=STEPS, batch_size=4, progress=False)
    record_samples(toy, path, SampleOptions(sites=[BLOCK, FFN], tokens=16, batch_size=3), progress=False)
    return path


@pytest.fixture(scope="module")
def sae(sampled, tmp_path_factory):
    out = tmp_path_factory.mktemp("sae") / "block"
    options = SAEOptions(k=4, expansion=4, epochs=40, batch_size=128, buffer=3, lr=2e-3)
    return out, train_sae(StoreSource(sampled, BLOCK), out, options, progress=False), options


def test_a_block_site_is_its_blocks_output_and_has_no_weight(toy):
    (site,) = select(toy, BLOCK)
    assert site.output and site.width == 96
    with pytest.raises(ValueError, match="block's output .* cannot be pruned"):
        weight_of(toy, site)
    seen, raw = [], []
    from workbench.models.sites import site_hooks

    with torch.inference_mode(), hooks(*site_hooks(toy, [site], lambda s, x: seen.append(x.clone())),
                                       Hook(module_of(toy, site), lambda m, a, out: raw.append(out.clone()))):  # fmt: skip
        toy(["a red circle"], num_inference_steps=2, guidance_scale=1.5, generator=torch.Generator().manual_seed(0))
    assert len(seen) == len(raw) == 2 and all(torch.equal(a, b) for a, b in zip(seen, raw))


def test_token_samples_are_the_sites_tokens_at_their_positions(toy, sampled):
    s = open_samples(sampled)
    ps = prompts()
    assert list(s["text"].values) == [p.text for p in ps]
    assert s.attrs["tokens"] == {BLOCK: 16, FFN: 16} and s.attrs["site_tokens"] == {BLOCK: 64, FFN: 16}
    raw = {BLOCK: [], FFN: []}
    from workbench.models.sites import site_hooks

    gens = [torch.Generator().manual_seed(p.seed) for p in ps]
    with (
        torch.inference_mode(),
        hooks(*site_hooks(toy, select(toy, [BLOCK, FFN]), lambda site, x: raw[site.name].append(x.clone()))),
    ):
        toy([p.text for p in ps], num_inference_steps=STEPS, guidance_scale=1.5, generator=gens)
    n = len(ps)
    for name, index in ((BLOCK, 0), (FFN, 1)):
        x, pos = s[name]["x"].values, s[name]["token"].values
        for i, p in enumerate(ps):
            for call in range(STEPS):
                want = token_positions(0, p.text, p.seed, index, call, s.attrs["site_tokens"][name], 16)
                np.testing.assert_array_equal(pos[i, call], want)
                cond = raw[name][call][n + i]  # [uncond, cond] rows
                np.testing.assert_allclose(x[i, call].astype(np.float32), cond[want].numpy(), rtol=2e-3, atol=2e-3)
    assert len(set(map(tuple, s[BLOCK]["token"].values[:, 0]))) > 1  # positions differ between prompts
    assert open_store(sampled).children.keys() == {FFN} | {"reductions"} or FFN in open_store(sampled).children


def test_a_budget_refuses_before_anything_is_written_and_other_settings_are_refused(toy, tmp_path, sampled):
    path = tmp_path / "b.zarr"
    record(toy, PromptSet(prompts().prompts[:2]), path, sites=FFN, steps=STEPS, progress=False)
    with pytest.raises(StoreError, match=r"a prompt, .* for 2 prompts .*over the budget of 1\.0 kB"):
        record_samples(toy, path, SampleOptions(sites=[BLOCK], max_bytes=1000), progress=False)
    assert not (path / "samples").exists()
    with pytest.raises(StoreError, match="made with other tokens"):
        record_samples(toy, sampled, SampleOptions(sites=[BLOCK, FFN], tokens=8), progress=False)


def test_a_samples_run_killed_at_any_step_resumes_to_the_same_bytes(toy, tmp_path):
    kills = [1, 4, 9, 15, 22, 30, 38, 45, 52, 56]
    count = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "count.zarr"), "0", "samples"],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert int(count.stdout.split()[-1]) > max(kills), count.stderr[-800:]
    killed = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "k{}.zarr"), ",".join(map(str, kills)), "samples"],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    status = json.loads(killed.stdout.split("\n")[-2])
    sys.path.insert(0, str(HELPER.parent))
    options = SampleOptions(sites=["down_blocks.0.attentions.0.transformer_blocks.0", "mid_block.attentions.0.transformer_blocks.0.ff.net.2"],
                            tokens=16, batch_size=1)  # the helper's  # fmt: skip
    record_samples(toy, tmp_path / "count.zarr", options, progress=False)  # already whole: nothing to do
    ref = open_samples(tmp_path / "count.zarr")
    for n in kills:
        assert status[str(n)] == -9, f"step {n}: not killed ({status[str(n)]}): {killed.stderr[-500:]}"
        path = tmp_path / f"k{n}.zarr"
        record_samples(toy, path, options, progress=False)
        got = open_samples(path)
        assert list(got["text"].values) == list(ref["text"].values)
        for site in options.sites:
            assert got[site]["x"].values.tobytes() == ref[site]["x"].values.tobytes(), (n, site)
            assert got[site]["token"].values.tobytes() == ref[site]["token"].values.tobytes(), (n, site)
        assert got["image"].values.tobytes() == ref["image"].values.tobytes()


def test_the_sae_reconstructs_its_samples_in_saelens_format(sae, sampled):
    out, trained, options = sae
    m = trained.info["metrics"]
    assert m["explained_variance"] > 0.7 and m["l0"] == pytest.approx(4.0) and m["tokens"] == 8 * STEPS * 16
    cfg = json.loads((out / "cfg.json").read_text())
    # SAELens 6 (sae_lens/saes/sae.py SAEConfig, topk_sae.py TopKSAEConfig): its fields, metadata, architecture
    assert set(cfg) == {"d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations", "reshape_activations",
                        "metadata", "architecture", "k", "rescale_acts_by_decoder_norm"}  # fmt: skip
    assert (cfg["architecture"], cfg["d_in"], cfg["d_sae"], cfg["k"]) == ("topk", 96, 384, 4)
    assert cfg["metadata"]["hook_name"] == BLOCK and cfg["metadata"]["sae_lens_version"].startswith("6.")
    from safetensors.numpy import load_file

    w = load_file(str(out / "sae_weights.safetensors"))
    assert {k: v.shape for k, v in w.items()} == {"W_enc": (96, 384), "b_enc": (384,), "W_dec": (384, 96), "b_dec": (96,)}
    loaded = load_sae(out)
    x = open_samples(sampled)[BLOCK]["x"].values.astype(np.float32).reshape(-1, 96)
    z = loaded.encode(x)
    assert ((z > 0).sum(1) <= 4).all()
    ev = 1 - ((loaded.decode(z) - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert ev == pytest.approx(m["explained_variance"], abs=1e-3)  # the saved (scale-folded) SAE is the one measured


def test_saelens_loads_the_folder_unchanged(sae, sampled):
    sae_lens = pytest.importorskip("sae_lens", reason="SAELens is not installed here (not in this machine's package index)")
    out, trained, _ = sae
    theirs = sae_lens.SAE.load_from_disk(str(out))
    x = open_samples(sampled)[BLOCK]["x"].values.astype(np.float32).reshape(-1, 96)
    np.testing.assert_allclose(theirs.encode(torch.from_numpy(x)).detach().numpy(), trained.encode(x), rtol=1e-4, atol=1e-5)


def test_a_killed_training_resumes_to_the_same_weights_and_a_damaged_sae_is_refused(sampled, tmp_path, monkeypatch):
    import workbench.recording.sae as mod

    options = SAEOptions(k=4, expansion=2, epochs=2, batch_size=64, buffer=3, lr=2e-3)
    whole = train_sae(StoreSource(sampled, BLOCK), tmp_path / "whole", options, progress=False)

    class Killed(BaseException):
        pass

    real, calls = mod._checkpoint, []

    def dies_after_the_second(*a):
        real(*a)
        calls.append(1)
        if len(calls) == 2:
            raise Killed

    monkeypatch.setattr(mod, "_checkpoint", dies_after_the_second)
    with pytest.raises(Killed):
        train_sae(StoreSource(sampled, BLOCK), tmp_path / "killed", options, progress=False)
    assert (tmp_path / "killed" / "checkpoint.safetensors").exists() and not (tmp_path / "killed" / "cfg.json").exists()
    monkeypatch.setattr(mod, "_checkpoint", real)
    again = train_sae(StoreSource(sampled, BLOCK), tmp_path / "killed", options, progress=False)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert getattr(again, name).tobytes() == getattr(whole, name).tobytes(), name
    with pytest.raises(ValueError, match="checkpoint of another training"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "checkpoint.safetensors").write_bytes(
            (tmp_path / "killed" / "sae_weights.safetensors").read_bytes()
        )
        train_sae(StoreSource(sampled, BLOCK), tmp_path / "other", options, progress=False)
    data = bytearray((tmp_path / "whole" / "sae_weights.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "whole" / "sae_weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sae_weights.safetensors is damaged .* train it again"):
        load_sae(tmp_path / "whole")


def test_batchtopk_is_saved_as_jumprelu_with_its_threshold(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2, 40, 12)).astype(np.float32)
    sae = train_sae(ArraySource(x), tmp_path / "b", SAEOptions(k=3, expansion=2, architecture="batchtopk", epochs=3, batch_size=80,
                                                            buffer=2), progress=False)  # fmt: skip
    cfg = json.loads((tmp_path / "b" / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu" and "k" not in cfg
    assert sae.threshold.shape == (24,) and float(sae.threshold[0]) > 0
    z = load_sae(tmp_path / "b").encode(x.reshape(-1, 12))
    assert np.all((z == 0) | (z > sae.threshold[0] - 1e-6))


def test_feature_scores_auroc_and_maps_follow_their_definitions(sae, sampled):
    from sklearn.metrics import roc_auc_score

    _, trained, _ = sae
    s = open_samples(sampled)
    acts = unit_activations(s, BLOCK, trained)
    x = s[BLOCK]["x"].values.astype(np.float32)
    np.testing.assert_allclose(acts.values[2, 1], trained.encode(x[2, 1]).mean(0), rtol=1e-5, atol=1e-6)
    score = feature_scores(acts, "striped", "plain")
    t, o = acts.values[:4, 0].mean(0), acts.values[4:, 0].mean(0)
    np.testing.assert_allclose(score.values[0], t / (t.sum() + 1e-8) - o / (o.sum() + 1e-8), rtol=1e-5, atol=1e-7)
    mask = top_units(score, 5)
    assert mask.sum("feature").values.tolist() == [5] * STEPS
    assert score.values[0][mask.values[0]].min() >= score.values[0][~mask.values[0]].max()
    labels = acts["set"].values == "striped"
    auc = auroc(acts, labels)
    for f in (0, 7, int(auc.argmax())):
        assert auc.values[f] == pytest.approx(roc_auc_score(labels, acts.values[:, :, f].mean(1)))
    neurons = unit_activations(s, BLOCK)
    np.testing.assert_allclose(neurons.values[1, 2], x[1, 2].mean(0), rtol=1e-6)
    m = feature_map(s, BLOCK, trained, prompt=1, step=2, feature=int(auc.argmax()))
    pos = s[BLOCK]["token"].values[1, 2]
    assert m.shape == (8, 8) and np.isfinite(m.values.reshape(-1)[pos]).all() and np.isnan(m.values).sum() == 64 - 16
    with pytest.raises(ValueError, match="labels must mark some prompts True and some False"):
        auroc(acts, np.ones(8, bool))


def test_feature_ablation_changes_only_its_features_and_comes_off(toy, tmp_path):
    from workbench.editing import applied, load_edit
    from workbench.editing.make import make_edit
    from workbench.models.loading import model_hashes

    def gen():
        g = torch.Generator().manual_seed(3)
        return toy(
            ["a red circle with stripes"], num_inference_steps=4, guidance_scale=1.5, generator=[g], output_type="np"
        ).images

    run = {"progress": False, "steps": 4, "workdir": str(tmp_path)}
    edit = make_edit(toy, "features", "striped", {"sae_epochs": 2, "sae_expansion": 2, "features": 4}, run)
    edit.save(tmp_path / "e")
    edit = load_edit(tmp_path / "e")
    before, hashes = gen(), model_hashes(toy)
    with applied(toy, edit):
        ablated = gen()
        assert model_hashes(toy)["live"].startswith("features:")  # the image memo and provenance see the edit
    assert np.abs(ablated - before).max() > 1e-2
    np.testing.assert_array_equal(gen(), before)
    assert model_hashes(toy) == hashes
    edit.info["scale"] = 1.0  # the features kept as they are: the error term makes the block's output exact
    with applied(toy, edit):
        same = gen()
    np.testing.assert_allclose(same, before, atol=1e-4)


def test_the_features_page_computes_its_sentences_from_its_tables(tmp_path):
    import pandas as pd

    from workbench.reports.features_page import HARM, matched, write_page

    table = pd.DataFrame(
        [
            {
                "concept": c,
                "site": s,
                "window": w,
                "shown": 10,
                "feature": f,
                "residual": 0.6,
                "neuron": n,
                "ev": 0.9,
                "l0": 32.0,
                "dead": 3,
                "d_sae": 1536,
            }
            for c, f, n in (("striped", 0.9, 0.8), ("circle", 0.7, 0.75))
            for s in ("a", "b")
            for w in ("all", "early")
        ]  # fmt: skip
    )
    table.loc[(table["concept"] == "striped") & (table["site"] == "b"), "feature"] = 0.95
    cells = pd.DataFrame([{"eraser": "conceptprune", "setting": "cp-k=2", "after": 0.5, "harm": 0.02},
                          {"eraser": "conceptprune", "setting": "cp-k=10", "after": 0.1, "harm": HARM + 0.2},
                          {"eraser": "features", "setting": "f-n=8", "after": 0.9, "harm": 0.5}])  # fmt: skip
    m = matched(cells)
    assert m.set_index("eraser").loc["conceptprune", "setting"] == "cp-k=2"
    assert np.isnan(m.set_index("eraser").loc["features", "concept left"])
    attacks = pd.DataFrame([{"eraser": "conceptprune", "setting": "cp-k=2", "attack": "unlearndiff", "pre_asr": 0.5, "post_asr": 0.25, "asr": 0.75, "attacked": 0.5, "n": 8,
                             "ci95": [0.07, 0.59]}])  # fmt: skip
    text = write_page(tmp_path / "features.md", table, cells, "striped", attacks).read_text()
    assert "beats the best FFN neuron on 1 of 2 concepts" in text  # striped 0.95 > 0.8; circle 0.7 < 0.75
    assert "mean difference is +0.050 AUROC (largest +0.150, smallest -0.050)" in text
    assert "| striped | 10 | 0.950 | a.b | 0.600 |" not in text and "| striped | 10 | 0.950 | b |" in text
    assert "conceptprune erases most within the budget (concept left 0.50, harm 0.02); feature ablation has no setting" in text
    assert "| conceptprune | cp-k=2 | unlearndiff | 0.500 | 0.250 | 0.750 | 0.500 | 8 | 0.07-0.59 |" in text
    assert (tmp_path / "features-auroc.csv").exists() and (tmp_path / "features-attacks.csv").exists()
