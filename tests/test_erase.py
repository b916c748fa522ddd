"""Erasers on tiny budgets: ESD/AC targets and training, learned masks, edits on disk, the CLI."""

import json

import numpy as np
import pytest
import torch

from workbench.analysis.masks import n_keep
from workbench.cli import main
from workbench.editing import Edit, applied, finetune, frozen_examples, group_params, learn_masks, load_edit, pruned
from workbench.editing.options import ANCHORED, GUIDED_AWAY
from workbench.models import module_of, select
from workbench.models.loading import model_hashes, weights_hash

PROMPTS = ["a red circle with stripes", "a blue square with stripes"]
ANCHORS = ["a red circle", "a blue square"]
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def examples(toy):
    return frozen_examples(toy, PROMPTS, SEEDS, GUIDED_AWAY, steps=3)


def loss(pipe, ex):
    with torch.no_grad():
        pred = pipe.unet(ex.x, ex.t, encoder_hidden_states=ex.cond).sample
    return torch.nn.functional.mse_loss(pred, ex.target).item()


def test_esd_targets_follow_the_formula(toy, examples):
    plain = frozen_examples(toy, PROMPTS, SEEDS, GUIDED_AWAY, eta=0.0, steps=3)  # target = e(x_t, "")
    assert len(examples) == 2 * 3  # one example per prompt and UNet call
    torch.testing.assert_close(examples.frozen, plain.frozen)  # the same frozen trajectory
    # eta = 1: u - (c - u) = 2u - c
    torch.testing.assert_close(examples.target, 2 * plain.target - examples.frozen)
    assert not torch.allclose(examples.target, examples.frozen)


def test_ac_with_the_prompt_as_its_own_anchor_targets_the_frozen_prediction(toy):
    same = frozen_examples(toy, PROMPTS, SEEDS, ANCHORED, anchors=PROMPTS, steps=3)
    torch.testing.assert_close(same.target, same.frozen, atol=1e-5, rtol=1e-5)
    other = frozen_examples(toy, PROMPTS, SEEDS, ANCHORED, anchors=ANCHORS, steps=3)
    assert (other.target - other.frozen).abs().mean() > 1e-3


def test_esd_moves_the_prediction_towards_its_target_and_leaves_the_model_untouched(toy, examples):
    before_hash = weights_hash(toy.unet)
    start = loss(toy, examples)
    weights = finetune(toy, examples, group="esd-x", iterations=8, lr=1e-3, progress=False)
    assert weights_hash(toy.unet) == before_hash  # the frozen model's own weights are as they were
    assert all(".attn2." in k for k in weights)
    edit = Edit("esd", {"weights_hash": model_hashes(toy)}, weights=weights)
    with applied(toy, edit):
        assert loss(toy, examples) < 0.8 * start
    assert weights_hash(toy.unet) == before_hash  # and after the edit is taken off


def test_a_learned_mask_has_the_budget_loads_with_pruned_restores_and_repeats_with_its_seed(toy, examples):
    site = select(toy, "ffn2")[0].name
    learned = learn_masks(toy, examples, sites=site, k=5.0, iterations=4, lr=0.1, progress=False)
    masks = learned.masks
    assert learned.weights is None and len(learned.losses) == 4 and all(np.isfinite(learned.losses))
    w = module_of(toy, select(toy, site)[0]).weight
    m = masks[site].numpy()
    assert m.shape == tuple(w.shape) and (m.sum(1) == n_keep(w.shape[1], 5.0)).all()  # k% of every row
    original = w.detach().clone()
    with pruned(toy, {site: m}):
        assert (w[torch.from_numpy(m)] == 0).all()
    assert torch.equal(w, original)  # back bit for bit
    again = learn_masks(toy, examples, sites=site, k=5.0, iterations=4, lr=0.1, progress=False).masks
    assert np.array_equal(again[site].numpy(), m)
    other = learn_masks(toy, examples, sites=site, k=5.0, iterations=4, lr=0.1, seed=1, progress=False).masks
    assert not np.array_equal(other[site].numpy(), m)
    for relaxation in ("hard-concrete", "sigmoid"):
        r = learn_masks(toy, examples, sites=site, k=5.0, relaxation=relaxation, iterations=3, progress=False).masks
        assert (r[site].numpy().sum(1) == n_keep(w.shape[1], 5.0)).all()


def test_a_mask_trained_with_esd_x_weights_returns_both_and_leaves_the_model_untouched(toy, examples):
    site = select(toy, "ffn2")[0].name
    before_hash, start = weights_hash(toy.unet), loss(toy, examples)
    learned = learn_masks(toy, examples, sites=site, k=5.0, iterations=8, lr=0.1, tune="esd-x", tune_lr=1e-3, progress=False)
    masks, tuned = learned.masks, learned.weights
    assert weights_hash(toy.unet) == before_hash  # trained weights restored bit for bit
    named = dict(toy.unet.named_parameters())
    assert tuned and all(".attn2." in k for k in tuned)
    assert sum(not torch.equal(v, named[k].detach()) for k, v in tuned.items()) == len(tuned)  # every one moved
    edit = Edit("pesd", {"weights_hash": model_hashes(toy)}, masks={s: m.numpy() for s, m in masks.items()}, weights=tuned)
    with applied(toy, edit):
        assert loss(toy, examples) < 0.8 * start
    assert weights_hash(toy.unet) == before_hash
    with pytest.raises(ValueError, match="overlaps the masked sites"):  # esd-u holds the ff.net.2 weights
        learn_masks(toy, examples, sites=site, k=5.0, iterations=1, tune="esd-u", progress=False)


def test_a_mask_started_from_another_mask_without_training_is_that_mask(toy, examples):
    site = select(toy, "ffn2")[0]
    w = module_of(toy, site).weight
    rng = np.random.default_rng(0)
    start = np.zeros(tuple(w.shape), dtype=bool)
    for row_ in start:
        row_[rng.choice(w.shape[1], n_keep(w.shape[1], 5.0), replace=False)] = True
    got = learn_masks(toy, examples, sites=site.name, k=5.0, init={site.name: start}, iterations=0, progress=False).masks
    assert np.array_equal(got[site.name].numpy(), start)


def test_an_edit_for_another_model_is_refused(toy, sd15, tmp_path):
    site = select(toy, "ffn2")[0]
    mask = np.zeros(tuple(module_of(toy, site).weight.shape), dtype=bool)
    Edit("pesd", {"weights_hash": model_hashes(toy), "concept": "striped"}, masks={site.name: mask}).save(tmp_path / "e")
    edit = load_edit(tmp_path / "e")
    with pytest.raises(ValueError, match=r"made for other weights \(unet: edit \w+, model \w+\)"):
        with applied(sd15, edit):
            pass
    with applied(toy, edit):  # its own model takes it
        pass


def test_an_edit_folder_is_whole_or_refused(toy, tmp_path):
    """Masks and weights round-trip with their checksums; a missing, changed or (for folders saved
    before checksums) needed-but-absent tensor file is refused by name, never loaded as no edit."""
    site = select(toy, "ffn2")[0]
    shape = tuple(module_of(toy, site).weight.shape)
    mask = np.random.default_rng(0).random(shape) < 0.1
    name = f"{site.name}.weight"
    weight = torch.randn(shape)
    Edit("pesd", {"concept": "striped", "tune": "esd-x"}, masks={site.name: mask}, weights={name: weight}).save(tmp_path / "e")
    edit = load_edit(tmp_path / "e")
    assert np.array_equal(edit.masks[site.name], mask) and torch.equal(edit.weights[name], weight)
    meta = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert set(meta["files"]) == {"masks.safetensors", "weights.safetensors"}
    # one byte changed in the weights: same size, other checksum
    raw = bytearray((tmp_path / "e" / "weights.safetensors").read_bytes())
    raw[-1] ^= 1
    (tmp_path / "e" / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"e/weights.safetensors is damaged \(its checksum"):
        load_edit(tmp_path / "e")
    # an edit folder from before checksums: its method says which files it needs
    del meta["files"]
    (tmp_path / "e" / "edit.json").write_text(json.dumps(meta))
    (tmp_path / "e" / "weights.safetensors").unlink()
    with pytest.raises(ValueError, match=r"e/weights.safetensors is missing: this pesd edit needs it"):
        load_edit(tmp_path / "e")
    # saving a masks-only edit over it leaves no stale weights behind
    Edit("conceptprune", {"concept": "striped"}, masks={site.name: mask}).save(tmp_path / "e")
    assert load_edit(tmp_path / "e").weights is None and not (tmp_path / "e" / "weights.safetensors").exists()


def test_cli_erase_writes_an_edit_that_other_tools_read(tmp_path, capsys):
    from workbench.analysis import load_masks

    out = tmp_path / "pesd"
    assert (
        main(
            [
                "erase",
                "--method",
                "pesd",
                "--concept",
                "striped",
                "--iterations",
                "2",
                "--n-per",
                "1",
                "--sites",
                "ffn1",
                "--tune",
                "esd-x-kv",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    from safetensors.torch import load_file

    tuned = load_file(str(out / "weights.safetensors"))  # the mask's fine-tuned companion
    assert tuned and all(".attn2.to_k." in k or ".attn2.to_v." in k for k in tuned)
    assert summary["method"] == "pesd" and summary["concept"] == "striped" and summary["seconds"] > 0
    assert set(summary["before"]) == set(summary["after"]) >= {"concept_rate", "degraded_rate", "other_accuracy", "fid"}
    masks = load_masks(out / "masks.safetensors")  # ConceptPrune's mask format
    assert masks.attrs["sites"] and all(s.endswith(".ff.net.0.proj") for s in masks.attrs["sites"])
    share = sum(int(masks[s]["mask"].values.sum()) for s in masks.attrs["sites"]) / sum(
        masks[s]["mask"].size for s in masks.attrs["sites"]
    )
    assert summary["density"] == pytest.approx(share)
    assert json.loads((out / "summary.json").read_text()) == {**summary}


def test_trainable_lets_exactly_the_given_tensors_learn_and_restores_everything(toy):
    """Inside: only the given parameters require grad; after (also after an error): their values
    bit for bit, no gradient, and every requires_grad flag as before, including odd ones."""
    from workbench.editing import trainable

    params = group_params(toy, "esd-x-kv")
    odd = next(p for n, p in toy.unet.named_parameters() if ".attn2." not in n)
    odd.requires_grad_(False)  # a flag that differs from the default must come back too
    flags = {n: p.requires_grad for n, p in toy.unet.named_parameters()}
    before = weights_hash(toy.unet)
    with pytest.raises(RuntimeError, match="boom"):
        with trainable(toy, params):
            assert all(p.requires_grad for p in params.values())
            ids = {id(p) for p in params.values()}
            assert not any(p.requires_grad for p in toy.unet.parameters() if id(p) not in ids)
            assert not any(p.requires_grad for p in toy.text_encoder.parameters())
            with torch.no_grad():
                for p in params.values():
                    p.add_(1.0)
                    p.grad = torch.ones_like(p)
            raise RuntimeError("boom")
    assert weights_hash(toy.unet) == before
    assert all(p.grad is None for p in params.values())
    assert {n: p.requires_grad for n, p in toy.unet.named_parameters()} == flags
    odd.requires_grad_(True)
