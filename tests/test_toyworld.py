"""The toy world: drawing, tokenizer, shipped model and oracle, quality gate on a small sample."""

import torch

from workbench.models.toyworld import load_oracle, parse
from workbench.models.toyworld.draw import draw, indices_of, sample_specs, spec_of
from workbench.models.toyworld.gate import quality_gate
from workbench.models.toyworld.oracle import accuracy


def test_drawing_is_seeded_and_captions_round_trip():
    a = draw(**sample_specs(8, torch.Generator().manual_seed(3)), generator=torch.Generator().manual_seed(4))
    b = draw(**sample_specs(8, torch.Generator().manual_seed(3)), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.shape == (8, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    ix = sample_specs(64, torch.Generator().manual_seed(0), p_none=0.2)
    specs = [spec_of(ix, i) for i in range(64)]
    assert indices_of(specs)["shape"].tolist() == ix["shape"].tolist()
    for s in specs:
        got = parse(s.caption())
        if s.shape == "none":
            assert got["shape"] == "none" and got["scene"] == s.scene
        else:
            assert got == {"shape": s.shape, "colour": s.colour, "texture": s.texture, "scene": s.scene}


def test_tokenizer_has_one_token_per_word(toy):
    ids = toy.tokenizer("a red circle with stripes on snow").input_ids
    assert len(ids) == 9  # bos + 7 words + eos
    assert toy.tokenizer.model_max_length == 16


def test_oracle_reads_fresh_images():
    acc = accuracy(load_oracle(), n=1024, seed=777)
    assert min(acc.values()) >= 0.99, acc


def test_unpruned_model_passes_a_small_quality_gate(toy):
    gate = quality_gate(toy, load_oracle(), n=32, batch=32, steps=25, seed=99)
    for attr in ("shape", "colour", "texture", "scene"):
        assert gate[attr] >= 0.85, gate
    assert gate["degraded"] <= 0.1


def test_pipeline_is_deterministic_and_fast_enough_to_use(toy):
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    a = toy(["a red circle", "a blue cross"], num_inference_steps=5, generator=gens(), output_type="pt").images
    b = toy(["a red circle", "a blue cross"], num_inference_steps=5, generator=gens(), output_type="pt").images
    assert torch.equal(a, b) and a.shape == (2, 3, 32, 32)
    c = toy(
        ["a red circle", "a blue cross"],
        num_inference_steps=5,
        generator=[torch.Generator().manual_seed(i) for i in (7, 8)],
        output_type="pt",
    ).images
    assert not torch.equal(a, c)  # the seed, not a constant, decides the image


def test_toy_fid_is_small_for_real_images_and_large_for_noise():
    from workbench.evaluation.toy import toy_fid
    from workbench.models.toyworld.oracle import degraded_batch

    oracle = load_oracle()
    g = torch.Generator().manual_seed(5)
    a = draw(**sample_specs(256, g), generator=g)
    b = draw(**sample_specs(256, g), generator=g)
    noise = degraded_batch(256, g, "cpu")
    same, far = toy_fid(oracle, a, b), toy_fid(oracle, a, noise)
    assert 0 <= same < far / 10
