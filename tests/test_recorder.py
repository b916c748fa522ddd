"""Recorded statistics equal a direct computation from the raw activations of the same run."""

import numpy as np
import pytest
import torch

from workbench.models import family_of, select
from workbench.recording.hooks import Recorder, capture_inputs, run_pipe


def direct(raw_calls, n_prompts, nb, is_text):
    """Plain float64 reductions of the raw inputs, in the store's (prompt, branch, step, neuron) order."""

    def stats(x):
        x = x.double()
        unit = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # an all-zero token counts 0
        return {"sumsq": (x**2).sum(1), "sumsq_unit": (unit**2).sum(1), "sum": x.sum(1), "absmax": x.abs().amax(1)}

    if is_text:
        per = [stats(x if x.dim() == 3 else x[:, None]) for x in raw_calls]
        out = {}
        for k in per[0]:
            full = torch.full((nb, n_prompts, per[0][k].shape[-1]), float("nan"), dtype=torch.float64)
            for i, p in enumerate(per[:nb]):
                full[nb - 1 - i] = p[k]
            out[k] = full.permute(1, 0, 2)
        return out
    per = [stats(x) for x in raw_calls]
    return {k: torch.stack([p[k] for p in per]).view(len(per), nb, n_prompts, -1).permute(2, 1, 0, 3) for k in per[0]}


@pytest.mark.parametrize("model", ["sd15", "sdxl", "toy"])
@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_recorded_equals_direct(request, model, guidance):
    pipe = request.getfixturevalue(model)
    families = list(family_of(pipe).sites)
    texts, seeds = ["a red circle", "a blue square on snow", "fog"], [0, 1, 2]
    size = None if model == "toy" else 64
    stats = ("sumsq", "sumsq_unit", "sum", "absmax")
    rec = Recorder(pipe, families, stats)

    def go():
        with rec:
            run_pipe(pipe, texts, seeds, 3, guidance, size)

    raw = capture_inputs(pipe, families, go)
    cfg = guidance > 1
    res = rec.result(len(texts), cfg)
    nb = 2 if cfg else 1
    assert res.branches == (("uncond", "cond") if cfg else ("cond",))
    assert len(res.timesteps) == len(raw[select(pipe, "ffn2")[0].name])
    seen_families = set()
    for site in rec.sites:
        ref = direct(raw[site.name], len(texts), nb, site.is_text)
        for stat in stats:
            got = torch.from_numpy(res.stats[site.name][stat]).double()
            want = ref[stat]
            assert got.shape == want.shape, (site.name, stat)
            both = ~torch.isnan(want)
            assert torch.equal(both, ~torch.isnan(got))
            torch.testing.assert_close(got[both], want[both], rtol=2e-5, atol=1e-5)
        seen_families.add(site.family)
    assert seen_families == set(families)


def test_hooks_removed_after_exception(toy):
    rec = Recorder(toy, ["ffn2", "text.fc2"])
    modules = [toy.unet] + [toy.unet.get_submodule(s.path) for s in rec.sites if not s.is_text]

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with rec:
            assert all(len(m._forward_pre_hooks) == 1 for m in modules)
            raise Boom
    assert all(len(m._forward_pre_hooks) == 0 for m in modules)
    with pytest.raises(TypeError):
        with rec:
            toy(prompt=["a red circle"], num_inference_steps=2, nonsense=1)
    assert all(len(m._forward_pre_hooks) == 0 for m in modules)


def test_unknown_site_pattern_names_the_fix(toy):
    with pytest.raises(ValueError, match="matches no layer.*family"):
        Recorder(toy, "ffn3")
    with pytest.raises(ValueError, match="unknown statistic"):
        Recorder(toy, "ffn2", ["mean"])


def test_sites_by_family_glob_and_callable(toy):
    ffn2 = select(toy, "ffn2")
    assert len(ffn2) == 7 and all(s.name.endswith("ff.net.2") for s in ffn2)
    up = select(toy, "up_blocks.*ff.net.2")
    assert [s.name for s in up] == [s.name for s in ffn2 if s.name.startswith("up_blocks")]
    assert [s.name for s in select(toy, lambda n: n.startswith("mid_block") and n.endswith("ff.net.2"))] == [
        "mid_block.attentions.0.transformer_blocks.0.ff.net.2"
    ]
    text = select(toy, "text.fc2")
    assert all(s.name.startswith("text_encoder.") for s in text) and len(text) == 2
    assert np.all([s.width == toy.unet.get_submodule(s.path).in_features for s in ffn2])
