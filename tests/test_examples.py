"""The erasers' training examples: the reference protocol (fresh x_t every iteration) against a
transcription of the reference code (rohitgandikota/erasing esd_sd.py) on a tiny SD 1.x pipeline,
the frozen model drawing while the edited one trains, AC's forward-noised anchor images, and the
cached set reproducing the old edits bit for bit."""

import copy

import pytest
import torch

from workbench.editing import Cached, FreshAC, FreshESD, finetune, frozen_examples, group_params, prediction_loss
from workbench.editing.make import make_edit
from workbench.editing.options import GUIDED_AWAY
from workbench.editing.training import batches, trainable

PROMPT = "a naked man"
NG = 2.0  # the reference's negative_guidance; ours is eta = NG - 1


def _reference_xt(pipe, prompt: str, seed: int, stop: int, steps: int, guidance: float) -> torch.Tensor:
    """The reference's x_t: the frozen pipeline run for ``stop`` steps from ``seed`` (its patched
    ``run_till_timestep``), here with diffusers' step-end callback; PNDM scales no model input."""
    got = {}

    def grab(p, i, t, kw):
        if i == stop - 1:
            got["x"] = kw["latents"].clone()
        return kw

    pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, generator=torch.Generator().manual_seed(seed),
         output_type="latent", callback_on_step_end=grab)  # fmt: skip
    return got["x"]


def _reference_loss(base, esd_unet, pipe, xt, t) -> torch.Tensor:
    """esd_sd.py's loss line, transcribed: criteria(noise_pred_esd_model, noise_pred_erase_from -
    negative_guidance * (noise_pred_erase - noise_pred_null)), erase_from = the concept itself."""
    erase_embeds, null_embeds = pipe.encode_prompt(prompt=PROMPT, device="cpu", num_images_per_prompt=1,
                                                   do_classifier_free_guidance=True, negative_prompt="")  # fmt: skip
    with torch.no_grad():
        noise_pred_erase = base(xt, t, encoder_hidden_states=erase_embeds, return_dict=False)[0]
        noise_pred_null = base(xt, t, encoder_hidden_states=null_embeds, return_dict=False)[0]
    noise_pred_erase_from = noise_pred_erase
    noise_pred_esd_model = esd_unet(xt, t, encoder_hidden_states=erase_embeds, return_dict=False)[0]
    return torch.nn.MSELoss()(noise_pred_esd_model, noise_pred_erase_from - (NG * (noise_pred_erase - noise_pred_null)))


def test_our_draw_is_the_references_x_t_and_our_loss_its_loss(sd15):
    src = FreshESD(sd15, [PROMPT], eta=NG - 1, steps=4, guidance=3.0, batch=1, seed=0)
    ex = src._examples([(0, 123, 2)])  # prompt 0, seed 123, stopped before step 2
    xt = _reference_xt(sd15, PROMPT, 123, 2, 4, 3.0)
    torch.testing.assert_close(ex.x, xt, rtol=0, atol=1e-6)
    sd15.scheduler.set_timesteps(4)
    assert int(ex.t[0]) == int(sd15.scheduler.timesteps[2])
    # an edited model (cross-attention perturbed) against the frozen one
    esd_unet = copy.deepcopy(sd15.unet)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in esd_unet.named_parameters():
            if ".attn2." in n:
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    theirs = _reference_loss(sd15.unet, esd_unet, sd15, xt, sd15.scheduler.timesteps[2])
    params = {n: p for n, p in esd_unet.named_parameters() if ".attn2." in n}
    ours = prediction_loss(sd15, ex, torch.arange(1), params)
    assert float(theirs.detach()) > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-8)


def test_one_training_iteration_makes_the_references_parameter_update(sd15):
    src = FreshESD(sd15, [PROMPT], eta=NG - 1, steps=4, guidance=3.0, batch=1, seed=3)
    ex = src.draws(0)
    # the reference: Adam(lr 5e-5) over the ESD-x parameters of a copy, one step on that x_t
    esd_unet = copy.deepcopy(sd15.unet)
    names = [n for n, _ in esd_unet.named_parameters() if ".attn2." in n]
    esd_params = [dict(esd_unet.named_parameters())[n] for n in names]
    opt = torch.optim.Adam(esd_params, lr=5e-5)
    opt.zero_grad()
    _reference_loss(sd15.unet, esd_unet, sd15, ex.x, ex.t[0]).backward()
    opt.step()
    ours = finetune(sd15, src, group="esd-x", iterations=1, lr=5e-5, batch=1, progress=False)
    assert sorted(ours) == sorted(names)
    # the reference takes e(c) and e("") from two calls, we from the sampler's one CFG batch: float
    # rounding, which Adam's first step (g / (|g| + eps)) lifts to a share of a step where g is ~eps
    frozen = dict(sd15.unet.named_parameters())
    diffs, steps = [], []
    for n, p in zip(names, esd_params):
        ref, mine = p.detach() - frozen[n].detach(), ours[n] - frozen[n].detach()
        diffs.append((ref - mine).abs().flatten())
        steps.append(ref.abs().flatten())
    diffs, steps = torch.cat(diffs), torch.cat(steps)
    assert steps.mean() > 0.5 * 5e-5  # Adam's first step: about lr for most entries
    assert diffs.max() < 0.05 * 5e-5 and diffs.mean() < 1e-3 * 5e-5
    moved = sum(int(not torch.equal(ours[n], frozen[n].detach())) for n in names)
    assert moved == len(names)  # every parameter moved, and ours moved the same way


class _Recording(FreshESD):
    """A fresh source that keeps every minibatch it gave."""

    def batches(self, iterations):
        self.seen = []
        for b in super().batches(iterations):
            self.seen.append(b)
            yield b


def test_fresh_draws_differ_per_iteration_and_come_from_the_frozen_model(toy):
    src = _Recording(toy, ["a red circle with stripes", "a blue square with stripes"], steps=5, batch=2, seed=0)
    finetune(toy, src, group="esd-x", iterations=3, lr=3e-2, batch=2, progress=False)  # a large step: the model moves
    assert not torch.equal(src.seen[0].x, src.seen[1].x) and not torch.equal(src.seen[1].x, src.seen[2].x)
    # drawn again with the pipeline's own (frozen) weights: the same x_t and targets as training saw
    for it in (1, 2):
        again = src.draws(it)
        torch.testing.assert_close(again.x, src.seen[it].x, rtol=0, atol=0)
        torch.testing.assert_close(again.target, src.seen[it].target, rtol=0, atol=0)
    held = src.heldout(4, iterations=3)
    train = src.train(4, iterations=3)
    assert torch.equal(held.t, train.t) and not torch.equal(held.x, train.x)  # same steps, other seeds


def test_ac_draws_are_anchor_images_noised_and_the_anchor_prediction(toy):
    src = FreshAC(toy, ["a red circle with stripes"], ["a red circle"], pool=2, steps=3, batch=2, seed=0)
    ex = src.draws(0)
    anchor = toy.encode_prompt(["a red circle"])
    with torch.no_grad():
        want = toy.unet(ex.x, ex.t, encoder_hidden_states=anchor.expand(2, -1, -1)).sample
    torch.testing.assert_close(ex.target, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ex.cond, toy.encode_prompt(["a red circle with stripes"]).expand(2, -1, -1))
    # x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) noise of a pool image: at t = 0 it is (nearly) the image itself
    pick, noise, t = src._plan(0)
    a = src.noise.alphas_cumprod[t].view(-1, 1, 1, 1)
    x0 = torch.stack([src._x0[(False, int(i))] for i in pick])
    torch.testing.assert_close(ex.x, a.sqrt() * x0 + (1 - a).sqrt() * noise, rtol=1e-5, atol=1e-5)
    assert not torch.equal(src.draws(1).x, ex.x)
    held = src.heldout(2, iterations=1)
    assert torch.equal(held.t, ex.t) and not torch.equal(held.x, ex.x)


def test_cached_examples_reproduce_the_old_training_loop_bit_for_bit(toy):
    """The cached protocol is the old one: a fixed set, minibatches with replacement, Adam in place."""
    c = make_edit(
        toy,
        "esd",
        "striped",
        {"iterations": 3, "lr": 1e-3, "batch": 8, "examples": "cached"},
        {"steps": 3, "gap": 0, "progress": False},
    )
    from workbench.prompts.concepts import get_concept

    target = get_concept("striped").target
    ex = frozen_examples(toy, [p.text for p in target], [p.seed for p in target], GUIDED_AWAY, steps=3)
    params = group_params(toy, "esd-x")
    torch.manual_seed(0)
    with trainable(toy, params):  # the old loop, transcribed
        opt = torch.optim.Adam(list(params.values()), lr=1e-3)
        for idx in batches(len(ex), 8, 3, 0):
            loss = prediction_loss(toy, ex, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        old = {k: p.detach().clone() for k, p in params.items()}
    assert c.info["examples"] == "cached" and c.info["examples_cached"] == len(ex)
    assert all(torch.equal(c.weights[k], old[k]) for k in old)
    assert any(not torch.equal(old[k], p) for k, p in group_params(toy, "esd-x").items())  # training moved them


def test_every_trained_edit_records_its_train_and_heldout_loss(toy):
    e = make_edit(toy, "pesd", "striped", {"k": 5.0, "iterations": 2}, {"steps": 3, "gap": 4, "progress": False})
    assert e.info["examples"] == "fresh" and e.info["batch"] == 1 and e.info["sampling_guidance"] == 1.5
    assert e.info["gap_draws"] == 2 and 0 < e.info["train_loss"] and 0 < e.info["heldout_loss"]
    assert e.info["train_loss"] != e.info["heldout_loss"]
    with pytest.raises(ValueError, match="option examples=.stale.: use one of fresh, cached"):
        make_edit(toy, "esd", "striped", {"examples": "stale"})


def test_a_cached_source_needs_a_way_to_make_heldout_examples(toy):
    ex = frozen_examples(toy, ["a red circle with stripes"], [0], GUIDED_AWAY, steps=2)
    with pytest.raises(ValueError, match="held-out"):
        Cached(ex).heldout()


def test_fresh_draws_made_ahead_are_the_draws_of_one_iteration_at_a_time(toy):
    """AHEAD iterations' draws in one sampler call: each iteration's examples are those it draws alone
    (its prompts, seeds and stopping steps), up to the rounding of a larger batch."""
    prompts = ["a red circle with stripes", "a blue square with stripes"]
    src = FreshESD(toy, prompts, steps=6, batch=2, seed=4)
    together = list(src.batches(5, ahead=5))
    alone = list(src.batches(5, ahead=1))
    assert len(together) == len(alone) == 5 and all(len(b) == 2 for b in together)
    for a, b in zip(together, alone):
        assert torch.equal(a.t, b.t)  # the same stopping steps
        torch.testing.assert_close(a.x, b.x, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.target, b.target, rtol=1e-4, atol=1e-5)
    assert len({tuple(b.t.tolist()) for b in together}) > 1  # the iterations differ
