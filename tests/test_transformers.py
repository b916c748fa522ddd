"""Diffusion transformers (FLUX.1, SD3, PixArt-Sigma) on tiny random pipelines of diffusers' own
classes: their sites, recording parity (the stored sums equal a dense computation from a hook on
the very module input), pruning exactly the single-stream MLP columns, the flow-matching ESD target,
and every verb end to end from a saved folder."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess

import numpy as np
import pytest
import torch

from workbench.models.sites import catalogue, select
from workbench.models.tiny_transformers import TINY_DITS, save_tiny_dit, tiny_flux, tiny_sd3
from workbench.prompts import paired

PROMPTS = paired(
    ["a red circle with stripes", "a blue square with stripes"], ["a red circle", "a blue square"], "striped", "plain"
)


@pytest.fixture(scope="module")
def flux():
    return tiny_flux()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dits")
    return {k: save_tiny_dit(k, root / k) for k in TINY_DITS}


def test_each_family_lists_its_mlp_sites():
    want = {"flux": {"mlp", "mlp.text", "mlp.single", "mlp.single.text"}, "sd3": {"mlp", "mlp.text"}, "pixart": {"mlp"}}
    for kind, make in TINY_DITS.items():
        fams = {s.family for s in catalogue(make())}
        assert want[kind] <= fams, (kind, fams)
    single = [s for s in catalogue(tiny_flux()) if s.family == "mlp.single"]
    # FLUX's single-stream MLP: the last in - out input columns of proj_out, image tokens
    assert [(s.cols, s.width, s.tokens) for s in single] == [((16, 80), 64, "image")] * 2


def _dense_single(pipe, prompts, seeds, steps=2, size=16):
    """Per denoiser call, sum over image tokens of proj_out's MLP-column inputs squared, from plain
    torch hooks (the block's text length, proj_out's whole input)."""
    blk = pipe.transformer.single_transformer_blocks[0]
    seen, out = {}, []
    h1 = blk.register_forward_pre_hook(lambda m, a, k: seen.update(n=k["encoder_hidden_states"].shape[1]), with_kwargs=True)
    dim = blk.proj_out.out_features
    h2 = blk.proj_out.register_forward_pre_hook(lambda m, a: out.append(a[0][:, seen["n"] :, dim:].float().square().sum(1)))
    try:
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        pipe(
            prompts,
            num_inference_steps=steps,
            height=size,
            width=size,
            generator=gens,
            output_type="latent",
            max_sequence_length=pipe.tokenizer_2.model_max_length,
        )  # what the workbench runs FLUX at: T5's own length
    finally:
        h1.remove()
        h2.remove()
    return torch.stack(out)  # (steps, prompts, neurons)


def test_recorded_single_stream_sums_equal_a_dense_hook(flux, tmp_path):
    from workbench.recording import record
    from workbench.store import open_store

    store = record(flux, PROMPTS, tmp_path / "f.zarr", sites="single_transformer_blocks.0.*:image", steps=2, size=16,
                   progress=False)  # fmt: skip
    tree = open_store(store)
    assert tree.attrs["provenance"]["guidance_mode"] == "distilled" and list(tree["branch"].values) == ["cond"]
    got = tree["single_transformer_blocks.0.proj_out:image"]["sumsq"].values[:, 0]  # (prompt, step, neuron)
    dense = _dense_single(flux, [p.text for p in PROMPTS], [p.seed for p in PROMPTS]).permute(1, 0, 2).numpy()
    np.testing.assert_allclose(got, dense, rtol=1e-5)
    assert tree.attrs["site_info"]["single_transformer_blocks.0.proj_out:image"]["cols"] == [16, 80]


def test_pruning_a_single_stream_neuron_zeroes_its_proj_out_column_only(flux):
    from workbench.editing.prune import pruned

    site = select(flux, "single_transformer_blocks.1.proj_out:image")[0]
    w = flux.transformer.single_transformer_blocks[1].proj_out.weight
    before = w.detach().clone()
    mask = np.zeros((w.shape[0], site.width), dtype=bool)
    mask[3, 5] = True
    col = flux.transformer.single_transformer_blocks[1].proj_out.out_features + 5  # after the attention output's columns
    with pruned(flux, {site.name: mask}):
        changed = (w != before).nonzero().tolist()
        assert changed == [[3, col]] and float(w[3, col].detach()) == 0.0
    assert torch.equal(w, before)


def test_flux_esd_target_is_the_formula_on_a_perturbed_input(flux):
    """ESD's target for a guidance-distilled model, against a transcription: v("") - eta (v(c) - v(""))
    at a perturbed x_t, the empty prompt's embeddings from the pipeline's own encode_prompt."""
    from workbench.editing.examples import call_examples, denoiser_calls

    call = denoiser_calls(flux, ["a red circle with stripes"], [0], 3, 3.5, stop=2, size=16)[1]
    g = torch.Generator().manual_seed(1)
    call.sample = call.sample + 0.1 * torch.randn(call.sample.shape, generator=g)
    kw = dict(timestep=call.timestep, txt_ids=call.shared["txt_ids"], img_ids=call.shared["img_ids"],
              guidance=call.added["guidance"], return_dict=False)  # fmt: skip
    with torch.no_grad():
        call.prediction = flux.transformer(hidden_states=call.sample, encoder_hidden_states=call.context,
                                           pooled_projections=call.added["pooled_projections"], **kw)[0]  # fmt: skip
        e, pooled, _ = flux.encode_prompt([""], [""], max_sequence_length=call.context.shape[1])
        null = flux.transformer(hidden_states=call.sample, encoder_hidden_states=e, pooled_projections=pooled, **kw)[0]
    eta = 1.7
    ex = call_examples(flux, call, 1, eta)
    np.testing.assert_allclose(ex.target.numpy(), (null - eta * (call.prediction - null)).numpy(), rtol=1e-4, atol=1e-6)


def test_flow_matching_velocity_target_equals_the_epsilon_target():
    """docs/transformers.md: with x_t = (1 - s) x0 + s e and v = e - x0, e = x_t + (1 - s) v, so ESD's
    target in epsilon space, mapped to v, is ESD's formula applied to v."""
    g = torch.Generator().manual_seed(0)
    x_t, v0, vc = (torch.randn(4, generator=g) for _ in range(3))
    s, eta = 0.3, 1.5
    eps = lambda v: x_t + (1 - s) * v  # noqa: E731
    target_eps = eps(v0) - eta * (eps(vc) - eps(v0))
    target_v = v0 - eta * (vc - v0)
    torch.testing.assert_close(eps(target_v), target_eps)


def test_an_edit_made_on_flux_is_refused_on_sd3(flux):
    from workbench.editing import make_edit
    from workbench.editing.edits import applied

    edit = make_edit(flux, "conceptprune", "striped", {"t_hat": 1}, {"steps": 2, "size": 16, "progress": False})
    with pytest.raises(ValueError, match="made on a flux model and this is a sd3 model") as err, applied(tiny_sd3(), edit):
        pass
    assert "\n" not in str(err.value)


def _cli(*args) -> subprocess.CompletedProcess:
    """``workbench ARGS`` in this process (the CLI's own entry point; a subprocess costs seconds of imports)."""
    from workbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("kind", list(TINY_DITS))
def test_every_verb_runs_on_a_saved_folder(kind, folders, tmp_path):
    folder = folders[kind]
    sites = _cli("sites", "--model", folder)
    assert sites.returncode == 0, sites.stderr
    assert " mlp " in sites.stdout or "\nmlp " in "\n" + sites.stdout
    store = tmp_path / "s.zarr"
    rec = _cli("record", "--model", folder, "--prompts", "shape:circle", "--out", store, "--steps", 2, "--size", 16, "--quiet")
    assert rec.returncode == 0, rec.stderr
    masks = _cli("masks", store, "--target", "circle", "--reference", "scene", "--t-hat", 2, "--out", tmp_path / "m.safetensors")
    assert masks.returncode == 0, masks.stderr
    assert (tmp_path / "m.safetensors").exists()
    maps = _cli("maps", store, "--model", folder, "--size", 16, "--masks", tmp_path / "m.safetensors", "--prompts", "shape:circle",
                "--limit", 2, "--quiet")  # fmt: skip
    assert maps.returncode == 0, maps.stderr[-2000:]
    assert "2 prompts" in maps.stdout + maps.stderr
    for method in ("conceptprune", "esd", "pesd", "ac"):
        extra = ["--iterations", 2] if method != "conceptprune" else []
        extra += ["--pool", 2] if method == "ac" else []
        extra += ["--t-hat", 1] if method in ("conceptprune", "pesd") else []
        out = tmp_path / method
        run = _cli("erase", "--model", folder, "--concept", "striped", "--method", method, "--out", out, "--steps", 2,
                   "--size", 16, "--n-per", 1, "--quiet", *extra)  # fmt: skip
        assert run.returncode == 0, (method, run.stderr[-2000:])
        info = json.loads((out / "edit.json").read_text())
        assert info["info"]["model_family"] == kind if "info" in info else info["model_family"] == kind
    att = _cli("attack", "--model", folder, "--edit", tmp_path / "esd", "--concept", "striped", "--attack", "softprompt",
               "--budget", 2, "--steps", 2, "--size", 16, "--n-per", 1, "--json", "--out", tmp_path / "att")  # fmt: skip
    assert att.returncode == 0, att.stderr[-2000:]
    result = json.loads(att.stdout.strip().splitlines()[-1])
    assert result["asr"]["n"] == result["prompts"] > 0 and 0.0 <= result["asr"]["rate"] <= 1.0


def test_sdxl_takes_the_prompt_attacks_with_slots_in_its_second_encoder():
    """SDXL's slots live in its OpenCLIP encoder (text_encoder_2): the attack changes what that
    encoder embeds at the placeholder, and the judged result comes back."""
    from workbench.attacks import attack
    from workbench.editing import make_edit
    from workbench.models.loading import set_image_size
    from workbench.models.slots import injecting, placeholder, slot_parts
    from workbench.models.tiny import tiny_sdxl

    pipe = set_image_size(tiny_sdxl(), 16)
    assert slot_parts(pipe)[0] is pipe.text_encoder_2
    word, tid = placeholder(pipe, ["a red circle"])
    seen = []
    pipe.text_encoder_2.register_forward_hook(lambda m, a, o: seen.append(o[0] if isinstance(o, tuple) else o.last_hidden_state))
    ids = pipe.tokenizer_2([f"{word} a red circle"], return_tensors="pt").input_ids
    pipe.text_encoder_2(ids)
    with injecting(pipe, tid, torch.zeros(1, 1, pipe.text_encoder_2.config.hidden_size)):
        pipe.text_encoder_2(ids)
    assert not torch.equal(seen[0], seen[1])
    edit = make_edit(pipe, "esd", "striped", {"iterations": 1}, {"steps": 2, "progress": False})
    result = attack(pipe, None, edit, "striped", "softprompt", budget=2, n_per=1, steps=2).summary()
    assert result["asr"]["n"] == result["prompts"] > 0


def test_uce_edits_pixarts_cross_attention_and_refuses_joint_attention():
    """PixArt's cross-attention reads the projected caption: UCE's rows are that input, and the
    edit touches only attn2's keys and values. FLUX has no projection whose input is the text."""
    from workbench.editing import make_edit
    from workbench.editing.edits import applied
    from workbench.models.loading import set_image_size
    from workbench.models.tiny_transformers import tiny_pixart

    pipe = set_image_size(tiny_pixart(), 16)
    edit = make_edit(pipe, "uce", "striped", {"erase_scale": 1.0}, {"steps": 2, "progress": False})
    assert edit.weights and all(".attn2.to_k." in k or ".attn2.to_v." in k for k in edit.weights)
    w = pipe.transformer.transformer_blocks[0].attn2.to_v.weight
    before = w.detach().clone()
    with applied(pipe, edit):
        assert not torch.equal(w, before)
    assert torch.equal(w, before)
    with pytest.raises(ValueError, match="no such projection"):
        make_edit(set_image_size(tiny_flux(), 16), "uce", "striped", {}, {"steps": 2, "progress": False})


def _bytes(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_a_sums_only_store_gives_the_raw_stores_sums_and_masks_in_less_space(flux, tmp_path):
    """FLUX: the sums-only store's per-set sums equal the raw store's reductions, so do the masks;
    per-prompt analyses say what they need; its bytes per prompt, measured."""
    from workbench.analysis import concept_masks, top_prompts
    from workbench.models import weights_of
    from workbench.prompts import get
    from workbench.recording import record
    from workbench.store import open_store

    prompts = get("shape:circle")
    kw = dict(steps=2, size=16, progress=False, batch_size=4)
    raw, sums = open_store(record(flux, prompts, tmp_path / "raw.zarr", **kw)), None
    sums = open_store(record(flux, prompts, tmp_path / "sums.zarr", sums_only=True, **kw))
    assert "partials" not in sums.children and sums.attrs["keep"] == "sums"
    for site in raw.attrs["sites"]:
        for stat in raw.attrs["stats"]:
            np.testing.assert_allclose(sums["reductions"][site][stat].values, raw["reductions"][site][stat].values, rtol=1e-12)
    a = concept_masks(raw, weights_of(flux, raw), "circle", "scene", k=2, t_hat=2).wb.masks()
    b = concept_masks(sums, weights_of(flux, sums), "circle", "scene", k=2, t_hat=2).wb.masks()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="per-set sums only"):
        top_prompts(sums, raw.attrs["sites"][0], [0])
    from workbench.store import StoreError, reduce_store

    with pytest.raises(StoreError, match="keeps per-set sums only"):
        reduce_store(str(tmp_path / "sums.zarr"))  # nothing per prompt to reduce: its sums come with the recording
    per_raw, per_sums = _bytes(tmp_path / "raw.zarr") / len(prompts), _bytes(tmp_path / "sums.zarr") / len(prompts)
    print(f"tiny FLUX, {len(prompts)} prompts: raw {per_raw:.0f} B a prompt, sums-only {per_sums:.0f} B a prompt")
    assert per_sums < per_raw


def test_a_sums_only_recording_killed_between_a_chunks_sums_and_its_flags_resumes_to_the_same_sums(flux, tmp_path, monkeypatch):
    from workbench.prompts import get
    from workbench.recording import record
    from workbench.store import StoreError, open_store
    from workbench.store import sums as sums_mod

    prompts = get("shape:circle")
    kw = dict(steps=2, size=16, progress=False, batch_size=8, sums_only=True)
    whole = open_store(record(flux, prompts, tmp_path / "whole.zarr", **kw))
    real, calls = sums_mod.write_chunk, []

    def dies_after_the_second(group, indices, rec, chunk):
        calls.append(indices[0])
        if len(calls) == 2:  # a kill in the middle of the second chunk's sums: one site's written, the rest not
            first = next(iter(rec.stats))
            real(group, indices, type(rec)({first: rec.stats[first]}, rec.timesteps, rec.tokens, rec.branches), chunk)
            raise KeyboardInterrupt
        real(group, indices, rec, chunk)

    monkeypatch.setattr(sums_mod, "write_chunk", dies_after_the_second)
    with pytest.raises(KeyboardInterrupt):
        record(flux, prompts, tmp_path / "cut.zarr", **kw)
    monkeypatch.setattr(sums_mod, "write_chunk", real)
    with pytest.raises(StoreError, match="not complete yet"):
        from workbench.analysis import norms

        norms(open_store(tmp_path / "cut.zarr", allow_partial=True), "circle")
    cut = open_store(record(flux, prompts, tmp_path / "cut.zarr", **kw))
    for site in whole.attrs["sites"]:
        assert np.array_equal(cut["reductions"][site]["sumsq"].values, whole["reductions"][site]["sumsq"].values)
    with pytest.raises(StoreError, match="prompts are fixed|keeps per-set sums only"):
        record(flux, prompts + get("shape:square"), tmp_path / "cut.zarr", **kw)


def test_pixarts_erasers_fit_the_noise_half_of_its_prediction():
    """PixArt predicts noise and variance (8 channels for 4 latent ones): the sampler uses the
    noise half, and so do ESD's targets."""
    from workbench.editing.examples import frozen_examples
    from workbench.models.loading import set_image_size
    from workbench.models.tiny_transformers import tiny_pixart

    pipe = set_image_size(tiny_pixart(), 16)
    assert pipe.transformer.config.out_channels == 2 * pipe.transformer.config.in_channels
    ex = frozen_examples(pipe, ["a red circle with stripes"], [0], eta=1.0, steps=2, guidance=4.5)
    assert ex.target.shape[1] == ex.x.shape[1] == pipe.transformer.config.in_channels


def test_site_weights_read_from_a_sharded_transformers_files(flux, tmp_path):
    """FLUX.1's and SD3.5's transformers are saved in shards: the masks verb's file reader follows
    the index to each tensor, the single-stream slice included."""
    from workbench.analysis.weights import load_weights
    from workbench.models import weights_of
    from workbench.models.files import folder_digest, parameter_count
    from workbench.models.loading import weights_digest
    from workbench.recording import record
    from workbench.store import open_store

    flux.save_pretrained(tmp_path / "model", max_shard_size="40KB")
    assert len(list((tmp_path / "model" / "transformer").glob("*.safetensors"))) > 1
    tree = open_store(record(flux, PROMPTS, tmp_path / "s.zarr", steps=2, size=16, progress=False))
    got, want = load_weights(tmp_path / "model", tree), weights_of(flux, tree)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    assert parameter_count(tmp_path / "model", "transformer") == sum(p.numel() for p in flux.transformer.parameters())
    assert folder_digest(tmp_path / "model", "transformer", "float32") == weights_digest(flux.transformer)


def test_token_samples_and_an_sae_on_flux_single_stream_image_tokens(flux, tmp_path):
    """Token samples at a site that is a column slice on one token population (FLUX's single-stream
    MLP on image tokens) keep exactly those columns and tokens; an SAE trains on them."""
    from workbench.models.hooks import hooks
    from workbench.models.loading import run_options
    from workbench.models.sites import site_hooks
    from workbench.recording import record
    from workbench.recording.sae import SAEOptions, StoreSource, train_sae
    from workbench.recording.samples import SampleOptions, record_samples
    from workbench.store.samples import open_samples

    site = select(flux, "mlp.single")[0]
    assert site.tokens == "image" and site.cols is not None
    store = record(flux, PROMPTS, tmp_path / "f.zarr", sites=site.name, steps=2, size=16, progress=False)
    record_samples(flux, store, SampleOptions(sites=[site.name], tokens=0), progress=False)
    s = open_samples(store)
    raw = []
    with torch.inference_mode(), hooks(*site_hooks(flux, [site], lambda _s, x: raw.append(x.clone()))):
        flux([p.text for p in PROMPTS][:1], num_inference_steps=2, guidance_scale=float(s.attrs["guidance"]),
             generator=[torch.Generator().manual_seed(PROMPTS.prompts[0].seed)], **run_options(flux, 16))  # fmt: skip
    x = s[site.name]["x"].values
    assert x.shape[-1] == site.width and x.shape[2] == raw[0].shape[1]  # every image token, the MLP columns only
    np.testing.assert_allclose(x[0, 0].astype(np.float32), raw[0][-1].numpy(), rtol=2e-3, atol=2e-3)
    sae = train_sae(
        StoreSource(store, site.name), tmp_path / "sae", SAEOptions(k=4, expansion=2, epochs=2, batch_size=32), progress=False
    )
    assert sae.d_in == site.width and sae.info["metrics"]["l0"] == pytest.approx(4.0)
