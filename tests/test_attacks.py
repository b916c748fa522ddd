"""Attacks on a ConceptPrune edit of the toy world, at tiny budgets: each lowers its attack loss
below the plain target prompt's; placeholders carry real tokens exactly; ASR counts and
intervals on a hand-made case; the CLI keeps the attacked prompts and embeddings."""

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import workbench as wb
from workbench.attacks import AttackResult, encode, injecting, placeholder, revive, targets, wilson, with_slots
from workbench.attacks.prompt_search import concept_direction, gradient_attack, ringabell
from workbench.attacks.run import strip
from workbench.cli import main
from workbench.editing.learning import frozen_examples
from workbench.editing.options import GUIDED_AWAY
from workbench.evaluation.erasers import calibration, make_edit


def test_wilson_interval_and_the_three_rates_on_a_hand_made_case():
    lo, hi = wilson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)  # the textbook values for 5 of 10
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    r = AttackResult("x", "striped", list("abcde"), [0, 1, 2, 3, 4], before=[True, False, False, False, True],
                     after=[True, True, False, False, False])  # fmt: skip
    s = r.summary()
    k = {key: (s[key]["k"], s[key]["n"]) for key in ("pre_asr", "post_asr", "asr", "attacked", "asr_new")}
    # Diffusion-MU-Attack: pre = shown unattacked (a, e), post = shown only after (b), ASR = pre + post
    assert k == {"pre_asr": (2, 5), "post_asr": (1, 5), "asr": (3, 5), "attacked": (2, 5), "asr_new": (1, 3)}
    assert s["asr"]["ci95"] == pytest.approx(list(wilson(3, 5)))


def test_placeholders_filled_with_real_token_embeddings_encode_exactly_as_the_text(toy):
    text = "a red circle with stripes on night"
    word, tid = placeholder(toy, [text])
    ids = toy.tokenizer("blue dots", add_special_tokens=False).input_ids
    table = toy.text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        with injecting(toy, tid, table[ids][None]):
            injected = encode(toy, [with_slots(text, word, len(ids))]).context
        plain = encode(toy, ["blue dots " + text]).context
        assert torch.equal(injected, plain)
        assert torch.equal(encode(toy, [text]).context, toy.encode_prompt([text]))  # as the pipeline conditions the UNet
        other = encode(toy, [with_slots(text, word, len(ids))]).context  # outside the context the placeholder is a word
    assert not torch.equal(other, plain)


@pytest.fixture(scope="module")
def setting(toy, tmp_path_factory):
    """A ConceptPrune edit of 'striped' (k=5%), four held-out target prompts and their examples."""
    edit = make_edit(toy, "conceptprune", "striped", {"k": 5.0}, {"workdir": tmp_path_factory.mktemp("cal"), "progress": False})
    tg = targets("striped")[:4]
    texts, seeds = [p.text for p in tg], [p.seed for p in tg]
    ex = frozen_examples(toy, texts, seeds, GUIDED_AWAY, steps=6)
    ex.target = ex.frozen.clone()
    path = edit.save(tmp_path_factory.mktemp("edit") / "cp")
    return edit, texts, ex, path


@pytest.mark.parametrize("kind", ["unlearndiff", "softprompt", "inversion"])
def test_each_gradient_attack_lowers_its_attack_loss(toy, setting, kind):
    from workbench.editing.edits import applied

    edit, texts, ex, _ = setting
    word, tid = placeholder(toy, texts)
    with applied(toy, edit):
        res = gradient_attack(toy, ex, texts, word, tid, k=1 if kind == "inversion" else 3, discrete=kind == "unlearndiff",
                              iterations=25, seed=0, bases=[strip(t, "striped") for t in texts] if kind == "inversion" else None,
                              shared=kind == "inversion")  # fmt: skip
    assert res.loss_after < res.loss_start, (res.loss_start, res.loss_after)  # better than where it started
    if kind != "inversion":  # and, with the prompt's own words kept, better than the plain target prompt
        assert res.loss_after < res.loss_before, (res.loss_before, res.loss_after)
    if kind == "unlearndiff":  # the judged prompt is made of real tokens
        table = toy.text_encoder.get_input_embeddings().weight
        assert torch.equal(res.vectors, table[res.token_ids])
        assert not set(res.token_ids.flatten().tolist()) & set(toy.tokenizer.all_special_ids)
    if kind == "inversion":  # one word shared by every prompt
        assert torch.equal(res.vectors[0], res.vectors[-1])


def test_ringabell_searches_towards_the_concept_direction_without_gradients(toy, setting):
    edit, texts, _, _ = setting
    word, tid = placeholder(toy, texts)
    pos, neg = calibration("striped")
    direction = concept_direction(toy, [p.text for p in pos], [p.text for p in neg])
    bases = [strip(t, "striped") for t in texts]
    assert all("stripes" not in b for b in bases) and bases[0].startswith("a ")
    res = ringabell(toy, texts, bases, direction, word, tid, k=3, generations=12, population=16, seed=0, checkpoints=(6, 12))
    assert res.trace[-1] > res.trace[0]  # the best candidates' similarity to the target encoding rose
    assert all(b <= a + 1e-6 for a, b in zip(res.trace[1:], res.trace[:-1]))  # elitist: never worse
    assert res.token_ids.shape == (len(texts), 3)
    short = ringabell(toy, texts, bases, direction, word, tid, k=3, generations=6, population=16, seed=0)
    plain = ringabell(toy, texts, bases, direction, word, tid, k=3, generations=12, population=16, seed=0)
    assert sorted(res.snapshots) == [6] and torch.equal(res.snapshots[6][1], short.token_ids)  # the search stopped at 6
    assert torch.equal(plain.token_ids, res.token_ids)  # keeping snapshots changes nothing


@pytest.mark.parametrize("discrete", [True, False])
def test_a_curves_checkpoint_is_the_attack_stopped_there(toy, setting, discrete):
    from workbench.editing.edits import applied

    edit, texts, ex, _ = setting
    word, tid = placeholder(toy, texts)
    with applied(toy, edit):
        long = gradient_attack(toy, ex, texts, word, tid, k=2, discrete=discrete, iterations=4, seed=1, checkpoints=(2, 4))
        short = gradient_attack(toy, ex, texts, word, tid, k=2, discrete=discrete, iterations=2, seed=1)
    assert sorted(long.snapshots) == [2]  # the last point is the attack's own result
    vectors, ids = long.snapshots[2]
    torch.testing.assert_close(vectors, short.vectors, rtol=0, atol=0)
    assert (ids is None) == (not discrete) and (ids is None or torch.equal(ids, short.token_ids))
    assert not torch.equal(vectors, long.vectors)  # two more steps moved the slots


@pytest.mark.parametrize("benign", [False, True])
def test_revival_trains_only_what_the_edit_changed(toy, setting, benign):
    edit, _, ex, _ = setting
    revived, trace = revive(toy, edit, ex, iterations=15, lr=1e-3, seed=0, benign=benign)
    assert np.mean(trace[-5:]) < np.mean(trace[:5])
    named = dict(toy.unet.named_parameters())
    from workbench.attacks.revival import masked_params

    for pname, mask in masked_params(toy, edit.masks).items():
        w, orig = revived.weights[pname], named[pname].detach()
        if benign:  # pruned entries held at zero; kept ones moved
            assert torch.all(w[mask] == 0) and not torch.equal(w[~mask], orig[~mask])
        else:  # kept entries untouched; pruned ones moved away from zero
            assert torch.equal(w[~mask], orig[~mask]) and (w[mask] != 0).any()


def test_revivals_checkpoint_is_revival_stopped_there(toy, setting):
    edit, _, ex, _ = setting
    seen = {}
    long, _ = revive(toy, edit, ex, iterations=4, lr=1e-3, seed=0, checkpoints=(2, 4), at=lambda d, e: seen.update({d: e}))
    short, _ = revive(toy, edit, ex, iterations=2, lr=1e-3, seed=0)
    assert sorted(seen) == [2]  # the last point is the attack's own result
    assert all(torch.equal(seen[2].weights[k], w) for k, w in short.weights.items())
    assert any(not torch.equal(long.weights[k], w) for k, w in short.weights.items())
    plain, _ = revive(toy, edit, ex, iterations=4, lr=1e-3, seed=0)
    assert all(torch.equal(plain.weights[k], w) for k, w in long.weights.items())  # keeping snapshots changes nothing


def test_revival_of_a_mask_trained_with_weights_revives_both(toy, setting):
    from workbench.attacks.revival import masked_params
    from workbench.editing import Edit

    edit, _, ex, _ = setting
    named = dict(toy.unet.named_parameters())
    tuned = {k: p.detach().clone() + 0.01 for k, p in named.items() if ".attn2.to_v." in k}
    both = Edit("pesd", edit.info, masks=edit.masks, weights=tuned)
    revived, _ = revive(toy, both, ex, iterations=4, lr=1e-3, seed=0)
    masked = set(masked_params(toy, edit.masks))
    assert set(revived.weights) == masked | set(tuned)  # neither part dropped
    assert all(not torch.equal(revived.weights[k], v) for k, v in tuned.items())  # moved from their edited values


@pytest.mark.parametrize("kind", ["mask", "weights"])
def test_relearning_trains_the_edits_group_holds_the_mask_and_judges_a_curve(toy, setting, kind):
    from workbench.attacks import Attempt
    from workbench.attacks.methods.relearn import RelearnOptions
    from workbench.attacks.relearn import run
    from workbench.attacks.revival import masked_params
    from workbench.editing.edits import Edit
    from workbench.prompts.concepts import get_concept

    edit, texts, _, _ = setting
    named = dict(toy.unet.named_parameters())
    original = {k: p.detach().clone() for k, p in named.items()}
    if kind == "weights":  # an ESD-x-like edit: its attn2 tensors, moved a little
        edit = Edit("esd", {}, weights={k: p.detach() + 0.01 for k, p in named.items() if ".attn2.to_v." in k})
    pruned = masked_params(toy, edit.masks) if kind == "mask" else {}
    seen = []

    def shown(images, prompts):  # called at each checkpoint, inside the fine-tuning
        start = {**original, **(edit.weights or {})}  # where each tensor began the fine-tuning
        moved = {k for k, p in named.items() if not torch.equal(p, start[k])}
        held = all(not named[k][m].any() for k, m in pruned.items())  # the mask's pruned entries still zero
        seen.append((moved, held))
        return [True] * len(images)

    c = get_concept("striped")
    tg = list(c.eval_target[:3])
    options = RelearnOptions(images=4, lr=1e-3, batch=2, fractions=(0.5, 1.0))
    a = Attempt(toy, c, edit, tg, shown, None, budget=4, seed=0, options=options, steps=4)
    after, adversarial = run(a)
    assert sorted(a.curve) == [2, 4] and after == a.curve[4] and adversarial == [p.text for p in tg]
    assert a.info["loss_first"] > 0 and a.info["relearn"]["tensors"] == len(edit.weights or named)
    for moved, held in seen:
        assert held
        if kind == "weights":  # the eraser's own tensors train, nothing else
            assert moved and moved <= set(edit.weights)
        else:  # the whole denoiser trains
            assert len(moved) > len(pruned)
    assert all(torch.equal(p, original[k]) for k, p in named.items())  # the model as it was, after


def test_attack_cli_reports_rates_and_keeps_prompts_and_embeddings(setting, tmp_path, capsys):
    _, _, _, path = setting
    out = tmp_path / "attacks" / "esd--unlearndiff-b3-s0"
    argv = [
        "attack",
        "--attack",
        "unlearndiff",
        "--edit",
        str(path),
        "--concept",
        "striped",
        "--budget",
        "3",
        "--steps",
        "6",
        "--tokens",
        "2",
        "--out",
        str(out),
    ]
    assert main([*argv, "--images", "4"]) == 2  # relearn's option, refused before any work, with unlearndiff's
    assert "unlearndiff takes no --images: its options are --batch, --lr, --tokens, --where" in capsys.readouterr().err
    assert main([*argv, "--json", "--quiet"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    n = len(targets("striped"))
    assert s["prompts"] == n and s["asr"]["n"] == n and s["pre_asr"]["n"] == n
    assert s["asr"]["k"] == s["pre_asr"]["k"] + s["post_asr"]["k"]
    assert 0 <= s["asr"]["ci95"][0] <= s["asr"]["rate"] <= s["asr"]["ci95"][1] <= 1
    saved = json.loads((out / "result.json").read_text())
    assert len(saved["per_prompt"]) == n and all(r["attacked"] != r["prompt"] for r in saved["per_prompt"])
    assert sum(r["after"] for r in saved["per_prompt"]) == s["attacked"]["k"]
    tensors = load_file(str(out / "adversarial.safetensors"))
    assert tensors["token_ids"].shape == (n, 2) and tensors["embeddings"].shape[:2] == (n, 2)  # --tokens 2
    assert saved["options"] == {"lr": None, "batch": 16, "tokens": 2, "where": "suffix"}
    curve = saved["curve"]  # ASR against budget: judged at 1 and 2 steps too, the last point the result's
    assert [c["budget"] for c in curve] == [0, 1, 2, 3] and curve[-1]["shown"] == [r["after"] for r in saved["per_prompt"]]
    assert curve[0]["shown"] == [r["before"] for r in saved["per_prompt"]] and curve[-1]["asr"] == s["asr"]["rate"]
    pin = saved["judge_pinned"]  # the toy oracle's weights as loaded, hashed
    assert pin["spec"] == "toy" and pin["version"] == wb.__version__ and len(pin["weights_sha256"]) == 64
    rows = list(csv.DictReader(open(saved["prompts_csv"])))  # the run's prompts: one row each, as result.json has them
    assert [(r["prompt"], int(r["seed"]), r["attacked"], r["shown_after"] == "True") for r in rows] == [
        (r["prompt"], r["seed"], r["attacked"], r["after"]) for r in saved["per_prompt"]]  # fmt: skip
    assert rows[1]["embedding"] == "adversarial.safetensors:embeddings[1]"
    assert main(["table", str(tmp_path / "attacks"), "--prompts", "--csv", str(tmp_path / "p.csv")]) == 0
    gathered = pd.read_csv(tmp_path / "p.csv")
    assert len(gathered) == n and set(gathered["run"]) == {out.name} and set(gathered["attack"]) == {"unlearndiff"}
    assert (
        main(["table", str(tmp_path), "--prompts"]) == 2
        and "--prompts and --thresholds read an attacks/ folder" in capsys.readouterr().err
    )
    assert main([*argv[:-2], "--out", str(tmp_path / "b"), "--budget", "0"]) == 2
    assert "budget=0: give at least 1 step" in capsys.readouterr().err


def test_recording_from_slot_embeddings_equals_recording_the_text(toy, tmp_path):
    from workbench.models.slots import Slots
    from workbench.prompts import Prompt, PromptSet
    from workbench.recording import record
    from workbench.store import open_store

    bases = ["a red circle with stripes on snow", "a blue cross on fog"]
    word, tid = placeholder(toy, bases)
    ids = toy.tokenizer("blue dots", add_special_tokens=False).input_ids
    table = toy.text_encoder.get_input_embeddings().weight.detach()
    slotted = [with_slots(b, word, len(ids), "suffix") for b in bases]
    as_text = PromptSet([Prompt(f"{b} blue dots", "adv", i) for i, b in enumerate(bases)])
    as_slots = PromptSet([Prompt(t, "adv", i) for i, t in enumerate(slotted)])
    # the embeddings are given in the other order: they are matched to prompts by their tokens
    slots = Slots(tid, slotted[::-1], table[ids][None].repeat(2, 1, 1))
    record(toy, as_text, tmp_path / "text.zarr", steps=2, batch_size=1, progress=False)
    record(toy, as_slots, tmp_path / "slots.zarr", steps=2, batch_size=1, progress=False, slots=slots)
    a, b = open_store(tmp_path / "text.zarr"), open_store(tmp_path / "slots.zarr")
    for site in a.attrs["sites"]:
        np.testing.assert_array_equal(a[site]["sumsq"].values, b[site]["sumsq"].values, err_msg=site)
    record(toy, as_slots, tmp_path / "plain.zarr", steps=2, batch_size=1, progress=False)  # the placeholder as a word
    c = open_store(tmp_path / "plain.zarr")
    site = a.attrs["sites"][-1]
    assert not np.array_equal(a[site]["sumsq"].values, c[site]["sumsq"].values)


def test_reactivation_records_three_runs_and_compares_concept_neurons(setting, tmp_path, capsys):
    _, _, _, path = setting
    att = tmp_path / "att"
    assert main(["attack", "--attack", "softprompt", "--edit", str(path), "--concept", "striped", "--budget", "2",
                 "--steps", "4", "--out", str(att), "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "docs" / "reactivation.md"
    argv = ["reactivation", "--edit", str(path), "--attack", str(att), "--work", str(tmp_path / "work"), "--out", str(out),
            "--steps", "4", "--t-hat", "2", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "mean sensitivity: concept neurons" in capsys.readouterr().out
    text = out.read_text()
    assert "| site | concept neurons | other neurons |" in text and "concept-neuron activity" in text
    from workbench.store import open_store

    edited = open_store(tmp_path / "work" / "edited.zarr")
    assert sorted(set(edited["set"].values)) == ["attacked", "clean"] and edited.sizes["prompt"] == 2 * len(targets("striped"))


def test_reactivation_compares_erasers_on_one_unedited_reference(toy, setting, tmp_path):
    from workbench.attacks import attack
    from workbench.editing.edits import Edit, load_edit
    from workbench.models.toyworld import load_oracle
    from workbench.reports.reactivation import compare_reactivation, reactivation_claims

    _, _, _, path = setting
    oracle = load_oracle()
    for name, edit in (("none", Edit("unedited")), ("cp", load_edit(path))):
        attack(toy, oracle, edit, "striped", "softprompt", budget=1, steps=4, out=tmp_path / name)
    runs = {"unedited": (None, tmp_path / "none"), "cp": (path, tmp_path / "cp")}
    ds = compare_reactivation(toy, runs, "striped", tmp_path / "work", t_hat=2, steps=4)
    assert list(ds["eraser"].values) == ["unedited", "cp"] and list(ds["group"].values) == ["concept", "other"]
    mean = ds["activity"].mean("step")
    # no edit: its plain run is the unedited reference, recorded twice
    np.testing.assert_allclose(mean.sel(eraser="unedited", run="edited"), mean.sel(eraser="unedited", run="unedited"), rtol=1e-5)
    # the mask changes the layers after the first pruned one, so the concept neurons' activity moves
    assert abs(float(mean.sel(eraser="cp", run="edited")) - float(mean.sel(eraser="cp", run="unedited"))) > 1e-4
    assert np.isfinite(ds["sensitivity"].values).all()
    claims = reactivation_claims(ds)  # one sentence per edited model, from the numbers above
    drop = 1 - float(mean.sel(eraser="cp", run="edited")) / float(mean.sel(eraser="cp", run="unedited"))
    assert len(claims) == 1 and claims[0].startswith(f"- cp: the edit lowers the concept neurons' activity by {drop:.1%}")
    other = shutil.copytree(tmp_path / "none", tmp_path / "other")
    res = json.loads((other / "result.json").read_text())
    res["per_prompt"][0]["seed"] += 1  # a run on another prompt set
    (other / "result.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="other prompts"):
        compare_reactivation(toy, {"a": (None, tmp_path / "none"), "b": (None, other)}, "striped", tmp_path / "w2", steps=4)


def test_reactivation_section_over_seeds_gives_mean_and_sd(tmp_path):
    import xarray as xr

    from workbench.reports.reactivation import compare_section

    act = np.zeros((2, 2, 3, 4))  # seed, eraser, run, step
    act[:, :, 0] = 2.0  # unedited
    act[:, 1, 1] = [[1.0] * 4, [1.5] * 4]  # the edit lowers them: 1.0 and 1.5 over the two seeds
    act[:, 1, 2] = [[1.5] * 4, [1.5] * 4]  # the attack wakes them
    act[:, 0, 1:] = 2.0
    sens = np.array([[[0.0, 0.0], [0.3, -0.1]], [[0.0, 0.0], [0.1, -0.1]]])  # seed, eraser, group
    ds = xr.Dataset(
        {"activity": (("seed", "eraser", "run", "step"), act), "sensitivity": (("seed", "eraser", "group"), sens),
         "asr": (("seed", "eraser"), [[1.0, 0.5], [1.0, 0.25]]), "pre_asr": (("seed", "eraser"), [[1.0, 0.25], [1.0, 0.25]])},
        coords={"seed": [0, 1], "eraser": ["unedited", "x"], "run": ["unedited", "edited", "attacked"],
                "group": ["concept", "other"], "step": range(4)},
        attrs={"concept": "striped"},
    )  # fmt: skip
    lines = compare_section(ds, tmp_path)
    assert lines[0].startswith("Mean ± sd over seeds [0, 1]")
    row = next(line for line in lines if line.startswith("| x |"))
    assert (
        row
        == "| x | 37.5% ± 12.5% | 25.0% ± 0.0% | +0.200 ± 0.100 | -0.100 ± 0.000 | 2.000 ± 0.000 | 1.250 ± 0.250 | 1.500 ± 0.000 |"
    )
    claim = next(line for line in lines if line.startswith("- x:"))
    # means: unedited 2.0, edited 1.25, attacked 1.5 -> lowered by 37.5 %, a third of it given back
    assert "lowers the concept neurons' activity by 37.5%; the attack gives back 33.3% of that" in claim
    assert "(more sensitive); ASR 37.5%." in claim
    ds = ds.assign_coords(eraser=["esd-x", "pesd"])  # the paper's comparison: concept neurons +0.200 (P-ESD) vs 0
    assert next(line for line in compare_section(ds, tmp_path) if line.startswith("- The P-ESD")).startswith(
        "- The P-ESD paper: a learned mask leaves the concept neurons less sensitive to the attack than ESD does. "
        "pesd +0.200 against esd-x +0.000: does not hold here"
    )


def test_attacked_prompts_as_text_replace_whole_placeholder_words_only(toy):
    from workbench.attacks.runners import _with_tokens

    ids = torch.tensor(toy.tokenizer("blue dots", add_special_tokens=False).input_ids)
    assert _with_tokens(toy, "a red square with stripes q q", "q", ids) == "a red square with stripes blue dots"


def test_exact_mcnemar_on_hand_made_pairs():
    from workbench.reports.attacked import mcnemar

    t = mcnemar([False] * 6 + [True] * 4, [True] * 6 + [True] * 4)  # 6 discordant pairs, all one way
    assert (t["a_only"], t["b_only"]) == (0, 6) and t["p"] == pytest.approx(2 / 64)
    t = mcnemar([True] + [False] * 5, [False] + [True] * 5)
    assert (t["a_only"], t["b_only"]) == (1, 5) and t["p"] == pytest.approx(2 * 7 / 64)
    assert mcnemar([True, False], [True, False])["p"] == 1.0  # no discordant pair
    with pytest.raises(ValueError, match="different lengths"):
        mcnemar([True], [True, False])


def test_attacked_cells_are_each_erasers_main_setting():
    from workbench.reports.attacked import attacked_cells
    from workbench.reports.cells import grid

    chosen = dict(attacked_cells(grid("striped", (0, 1), variants=True), 1))
    assert chosen["unedited"] is None
    assert chosen["conceptprune k=2%"].key == "conceptprune-k2p0-s0"  # deterministic: its one edit
    assert chosen["esd-x lr=1e-4"].key == "esd-examplesfresh-iterations200-lr0p0001-s1"
    assert chosen["pesd k=10%"].key == "pesd-examplesfresh-iterations200-k10p0-s1"  # not a variant, relaxation or init
    assert chosen["pesd attn2.to_v k=10%"].options["sites"] == "attn2.to_v"  # the variant, by its name
    assert chosen["pesd attn2.to_v k=10%"].seed == 1
    assert chosen["pac k=20%"].seed == 1
    assert chosen["uce scale=0.001"].key == "uce-erase_scale0p001-s0"  # a registered eraser is attacked with no other change
    assert chosen["features n=8"].key.startswith("features-features8")  # feature ablation, registered: in the grid and attacked
    assert len(chosen) == 9
    assert "pesd attn2.to_v k=10%" not in dict(attacked_cells(grid("striped", (0, 1)), 1))  # no variants, no cell
    twins = dict(attacked_cells(grid("striped", (0, 1), core=True, cached=True), 1))
    assert twins["pesd k=10%"].options["examples"] == "fresh"  # never the cached twin
    # the core grid's second seed: ESD-x and P-ESD only, unless every eraser is asked for (the deterministic
    # erasers' one edit, seed 0, is attacked with every seed)
    assert set(twins) == {"unedited", "conceptprune k=2%", "uce scale=0.001", "esd-x lr=1e-4", "pesd k=10%"}
    every = dict(attacked_cells(grid("striped", (0, 1), core=True, every_eraser=True), 1))
    assert (
        set(every) == set(twins) | {"ac lr=1e-4", "pac k=20%", "features n=8"}
        and every["ac lr=1e-4"].seed == every["pac k=20%"].seed == 1
    )


def test_attack_claims_read_the_pooled_numbers_and_skip_attacks_that_fail_on_the_unedited_model():
    from workbench.reports.attacked import asr_overview, attack_claims

    prompts = [(f"p{i}", i) for i in range(8)]

    def row(eraser, attack, before, after):
        return {"eraser": eraser, "attack": attack, "seed": 0, "prompts": prompts, "before": before, "after": after}

    rows = [row("unedited", "weak", [True] * 8, [False] * 8), row("esd-x lr=1e-4", "weak", [False] * 8, [False] * 8),
            row("unedited", "strong", [True] * 8, [True] * 8),
            row("esd-x lr=1e-4", "strong", [False] * 8, [True] * 2 + [False] * 6),
            row("pesd k=10%", "strong", [False] * 8, [True] * 8),
            row("unedited", "revive", [True] * 8, [True] * 8), row("pesd k=10%", "revive", [False] * 8, [True] * 8)]  # fmt: skip
    claims = attack_claims(rows, "striped")
    # the unedited model's ASR under 'weak' is 100 % (all shown before): the check reads the attacked images' 0 %
    assert claims[0].startswith("- weak: the attack makes 'striped' on 0.0% of the unedited model's images")
    assert claims[1] == (
        "- strong: pesd k=10% ASR 100.0% (pre-ASR 0.0%) against esd-x lr=1e-4 ASR 25.0% (pre-ASR 0.0%), "
        "McNemar p = 0.0312: the P-ESD paper: a learned mask is more robust than ESD; does not hold here."
    )
    assert claims[2].startswith("- revive: every edit comes back") and len(claims) == 3
    overview = asr_overview(rows)  # pooled ASR per eraser and attack, '-' where one was not run
    assert overview[0] == "| eraser | pre-ASR | ASR weak | ASR strong | ASR revive |"
    assert overview[3] == "| esd-x lr=1e-4 | 0.0% | 0.0% | 25.0% | - |"
    assert overview[4] == "| pesd k=10% | 0.0% | - | 100.0% | 100.0% |"
    costly = attack_claims(rows, "striped", {"esd-x lr=1e-4": (0.35, 9.0), "pesd k=10%": (0.01, 3.0)})
    assert costly[1].endswith("not at matched harm (esd-x lr=1e-4 costs 35.0 points; budget 10): not decided.")
    from workbench.reports.attacked import frontier_points

    assert frontier_points(rows, {"pesd k=10%": (0.01, 3.0)}) == {
        "strong": [("pesd k=10%", 1.0, 1.0)],
        "revive": [("pesd k=10%", 1.0, 1.0)],
    }
    rows[3]["after"] = [True] * 7 + [False]  # 7 of 8 against 8 of 8: one discordant pair, nothing decided
    assert attack_claims(rows, "striped")[1].endswith("McNemar p = 1: the P-ESD paper: a learned mask is more robust "
                                                      "than ESD; not decided at this size (p >= 0.05).")  # fmt: skip


def test_curve_points_pool_each_budget_over_seeds_and_the_figure_draws_them():
    from workbench.reports.attacked import curve_points
    from workbench.reports.plots import asr_curves

    def row(eraser, seed, before, curve):
        return {"eraser": eraser, "attack": "relearn", "seed": seed, "before": before,
                "summary": {"curve": [{"budget": b, "shown": s} for b, s in curve]}}  # fmt: skip

    rows = [row("esd", 0, [True, False], [(0, [True, False]), (5, [False, True]), (10, [False, True])]),
            row("esd", 1, [False, False], [(0, [False, False]), (5, [False, False]), (10, [True, True])]),
            row("ac", 0, [False, False], [(0, [False, False]), (4, [True, False])]),
            {"eraser": "cp", "attack": "relearn", "seed": 0, "before": [False], "summary": {}}]  # fmt: skip
    pts = curve_points(rows)
    # budget 5: seed 0 shown before or at 5 on both prompts, seed 1 on none: 2 of 4
    assert pts == {"relearn": {"esd": [(0, 0.25), (5, 0.5), (10, 1.0)], "ac": [(0, 0.0), (4, 0.5)]}}
    fig = asr_curves(pts)
    assert [list(t.y) for t in fig.data] == [[25.0, 50.0, 100.0], [0.0, 50.0]]


def test_attack_table_runs_each_eraser_and_attack_resumes_and_compares(toy, setting, tmp_path, monkeypatch):
    import shutil

    import workbench.attacks as attacks
    from workbench.models.toyworld import load_oracle
    from workbench.reports.attacked import attack_section, run_attacks
    from workbench.reports.cells import Cell

    _, _, _, path = setting
    cell = Cell("conceptprune", {"k": 2.0}, 0)
    shutil.copytree(path, tmp_path / "edits" / cell.key)
    args = (toy, load_oracle(), [cell], "striped", tmp_path, (0,), ("ringabell", "benign"))
    rows = run_attacks(*args, budget=1, progress=False, steps=4)
    assert [(r["eraser"], r["attack"]) for r in rows] == [
        ("unedited", "ringabell"), ("conceptprune k=2%", "ringabell"), ("conceptprune k=2%", "benign")]  # fmt: skip
    n = len(targets("striped"))
    assert all(
        len(r["after"]) == n and r["summary"]["asr"]["k"] == sum(a or b for a, b in zip(r["after"], r["before"])) for r in rows
    )
    monkeypatch.setattr(attacks, "attack", lambda *a, **k: pytest.fail("a finished run was redone"))
    again = run_attacks(*args, budget=1, progress=False, steps=4)
    assert [r["after"] for r in again] == [r["after"] for r in rows]
    text = "\n".join(attack_section(rows, "striped", {"conceptprune k=2%": (0.05, 7.0)}, tmp_path / "figures"))
    k = sum(rows[1]["after"])
    assert "| conceptprune k=2% | ringabell | 1 | " in text and f"| {k}/{n} = {k / n:.1%} [" in text
    assert "| 5.0 | 7.0 |" in text  # the eraser's harm beside its attack success
    both = sum(a and not b for a, b in zip(rows[1]["after"], rows[0]["after"]))
    assert f"| ringabell | conceptprune k=2% | unedited | {n} | {both} |" in text  # paired over the same prompts
    with pytest.raises(ValueError, match="unknown attack"):
        run_attacks(*args[:-1], ("nope",), progress=False)


def test_the_cli_offers_every_attack_the_library_has():
    """--attack's choices come from the registry, and building the parser imports no torch."""
    import subprocess
    import sys

    from workbench.attacks import ATTACKS

    code = ("import sys; from workbench.cli import build_parser; ap = build_parser(); "
            "sub = next(a for a in ap._actions if a.dest == 'command'); "
            "at = next(a for a in sub.choices['attack']._actions if a.dest == 'attack'); "
            "print(','.join(at.choices)); print('torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [",".join(ATTACKS), "False"]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    listed = readme.split("NAME is one of", 1)[1].split("(", 1)[0]
    assert re.findall(r"`([a-z-]+)`", listed) == list(ATTACKS)  # the README names every attack, in order
