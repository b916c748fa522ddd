"""Pruning: bit-exact restore, all-zero masks change nothing, one site's mask touches one weight."""

import numpy as np
import pytest
import torch

from workbench.editing import Pruner, export_pruned, pruned, random_like
from workbench.models import catalogue, module_of, select


def state(pipe):
    return {k: v.clone() for k, v in pipe.unet.state_dict().items()}


def random_masks(pipe, p=0.05, seed=0, family="ffn2"):
    rng = np.random.default_rng(seed)
    return {s.name: rng.random(module_of(pipe, s).weight.shape) < p for s in select(pipe, family)}


def test_restore_is_bit_exact(toy):
    before = state(toy)
    masks = random_masks(toy)
    with pruned(toy, masks) as p:
        assert p.count() == sum(int(m.sum()) for m in masks.values()) > 0
        for s in select(toy, "ffn2"):
            w = module_of(toy, s).weight
            assert (w[torch.from_numpy(masks[s.name])] == 0).all()
    after = state(toy)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_restore_on_exception(toy):
    before = state(toy)
    with pytest.raises(KeyError):
        with pruned(toy, random_masks(toy, seed=1)):
            raise KeyError("boom")
    assert all(torch.equal(before[k], v) for k, v in state(toy).items())


def test_all_zero_mask_changes_nothing(toy):
    zeros = {k: np.zeros_like(v) for k, v in random_masks(toy).items()}
    gens = lambda: [torch.Generator().manual_seed(0)]  # noqa: E731
    ref = toy(["a red circle"], num_inference_steps=4, generator=gens(), output_type="pt").images
    with pruned(toy, zeros):
        got = toy(["a red circle"], num_inference_steps=4, generator=gens(), output_type="pt").images
    assert torch.equal(ref, got)


def test_one_site_mask_changes_only_that_weight(toy):
    before = state(toy)
    site = select(toy, "ffn2")[2]
    mask = random_masks(toy, p=0.3)[site.name]
    p = Pruner(toy, {site.name: mask}).apply()
    try:
        after = state(toy)
    finally:
        p.restore()  # the session's shared model must come back even when the check fails
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [f"{site.path}.weight"]


def test_random_control_keeps_counts_per_row(toy):
    masks = random_masks(toy, p=0.1)
    rnd = random_like(masks, seed=3)
    for s in masks:
        np.testing.assert_array_equal(masks[s].sum(1), rnd[s].sum(1))
        assert not np.array_equal(masks[s], rnd[s])


def test_wrong_masks_are_refused(toy):
    with pytest.raises(ValueError, match="no site"):
        Pruner(toy, {"down_blocks.9.ff.net.2": np.zeros((2, 2), bool)})
    site = select(toy, "ffn2")[0]
    with pytest.raises(ValueError, match="shape"):
        Pruner(toy, {site.name: np.zeros((2, 2), bool)})


def test_export_pruned_round_trips(toy, tmp_path):
    from workbench.models import load_pipeline

    masks = random_masks(toy, seed=5)
    folder = export_pruned(toy, masks, tmp_path / "pruned")
    back = load_pipeline(str(folder))
    for s in catalogue(back):
        if s.name in masks:
            w = module_of(back, s).weight
            assert (w[torch.from_numpy(masks[s.name])] == 0).all()
    assert (folder / "masks.safetensors").exists()


def test_weights_hash_follows_pruning(toy):
    from workbench.models import weights_hash

    before = weights_hash(toy.unet)
    with pruned(toy, random_masks(toy, seed=7)):
        during = weights_hash(toy.unet)
    assert during != before and weights_hash(toy.unet) == before


def test_a_random_control_of_a_loaded_edit_is_the_same_in_every_process(tmp_path):
    """random_like draws site by site from one generator: a loaded edit must give its sites in the
    order they were saved (safetensors returns them in no fixed order), so that a seed names one
    control whichever process draws it."""
    import hashlib
    import subprocess
    import sys

    from workbench.editing.edits import Edit
    from workbench.editing.prune import random_like

    rng = np.random.default_rng(0)
    masks = {f"site{i}.ff.net.2": rng.random((6, 16)) < 0.2 for i in (3, 0, 7, 1, 5, 2, 6, 4)}  # not in sorted order
    Edit("pesd", {"concept": "striped"}, masks=masks).save(tmp_path / "e")
    here = random_like(masks, seed=4)
    want = hashlib.md5(b"".join(here[s].tobytes() for s in sorted(here))).hexdigest()
    code = ("import hashlib; from workbench.editing.edits import load_edit; from workbench.editing.prune import random_like; "
            f"m = random_like(load_edit({str(tmp_path / 'e')!r}).masks, seed=4); "
            "print(hashlib.md5(b''.join(m[s].tobytes() for s in sorted(m))).hexdigest())")  # fmt: skip
    for _ in range(2):
        assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == want
