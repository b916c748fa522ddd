"""UCE (editing/methods/uce.py): its closed form against a transcription of the formula, what it
edits, that it erases on the toy world, and several concepts erased with one edit."""

import json

import numpy as np
import pytest
import torch

from workbench.editing import make_edit
from workbench.editing.methods.uce import UCEOptions, _solve


def test_the_closed_form_is_the_formula_and_its_minimiser():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 4, generator=g)
    c, anchor, keep = (torch.randn(n, 4, generator=g, dtype=torch.float64) for n in (3, 3, 6))
    o = UCEOptions(erase_scale=0.7, preserve_scale=0.2, lamb=0.3)
    got = _solve(W, (c, anchor), keep, o)
    Wd = W.double()
    v = anchor @ Wd.T
    left = o.lamb * Wd + o.erase_scale * sum(torch.outer(v[i], c[i]) for i in range(3))
    left = left + o.preserve_scale * sum(torch.outer(Wd @ keep[j], keep[j]) for j in range(6))
    right = o.lamb * torch.eye(4, dtype=torch.float64) + o.erase_scale * sum(torch.outer(c[i], c[i]) for i in range(3))
    right = right + o.preserve_scale * sum(torch.outer(keep[j], keep[j]) for j in range(6))
    assert torch.allclose(got, left @ torch.linalg.inv(right), atol=1e-10)

    def objective(w):
        return (o.erase_scale * ((c @ w.T - v) ** 2).sum() + o.preserve_scale * ((keep @ w.T - keep @ Wd.T) ** 2).sum()
                + o.lamb * ((w - Wd) ** 2).sum())  # fmt: skip

    w = got.clone().requires_grad_(True)
    objective(w).backward()
    assert w.grad.abs().max() < 1e-9  # the gradient vanishes at the closed form: it is the minimiser


def test_uce_edits_only_cross_attention_keys_and_values_and_erases_striped(toy):
    from workbench.evaluation.erasers import erase_and_judge

    before = {k: v.detach().clone() for k, v in toy.unet.named_parameters()}
    edit = make_edit(toy, "uce", "striped", {"erase_scale": 1.0}, {"steps": 6, "progress": False})
    assert edit.weights and all(k.endswith(("attn2.to_k.weight", "attn2.to_v.weight")) for k in edit.weights)
    assert all(torch.equal(v, before[k]) for k, v in toy.unet.named_parameters())  # the pipeline is left as it was
    assert all(not torch.equal(v, before[k]) for k, v in edit.weights.items())
    values = make_edit(toy, "uce", "striped", {"keys": False}, {"steps": 6, "progress": False})
    assert values.weights and all(k.endswith("attn2.to_v.weight") for k in values.weights)
    r = erase_and_judge(toy, None, edit, n_per=1, steps=6)
    assert r["after"]["concept_rate"] < r["before"]["concept_rate"]


def test_several_concepts_at_once_conceptprune_is_the_union_of_each_mask(toy, tmp_path):
    run = {"steps": 3, "progress": False}
    both = make_edit(toy, "conceptprune", "striped,dotted", {"k": 5.0, "t_hat": 2}, {**run, "workdir": tmp_path / "b"})
    one = make_edit(toy, "conceptprune", "striped", {"k": 5.0, "t_hat": 2}, {**run, "workdir": tmp_path / "s"})
    two = make_edit(toy, "conceptprune", "dotted", {"k": 5.0, "t_hat": 2}, {**run, "workdir": tmp_path / "d"})
    assert both.info["concept"] == "striped,dotted" and set(both.masks) == set(one.masks)
    for site in both.masks:
        assert np.array_equal(both.masks[site], one.masks[site] | two.masks[site])
    assert any((one.masks[s] != two.masks[s]).any() for s in one.masks)  # a real union, not one concept twice


def test_several_concepts_are_judged_each_on_its_own_and_attacked_one_at_a_time(tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "E"
    assert main(["erase", "--method", "uce", "--concept", "striped,dotted", "--steps", "3", "--n-per", "1", "--out", str(out),
                 "--json", "--quiet"]) == 0  # fmt: skip
    s = json.loads(capsys.readouterr().out)
    assert s["concept"] == "striped,dotted" and set(s["per_concept"]) == {"striped", "dotted"}
    assert s["per_concept"]["dotted"]["concept"] == "dotted"
    assert main(["attack", "--attack", "softprompt", "--edit", str(out), "--concept", "striped,dotted", "--steps", "3",
                 "--budget", "1", "--quiet"]) == 2  # fmt: skip
    assert "an attack takes one concept at a time" in capsys.readouterr().err
    with pytest.raises(ValueError, match="named twice"):
        from workbench.prompts.concepts import get_concept

        get_concept("striped,striped")
