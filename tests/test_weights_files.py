"""Weights from a model folder's files, no model built: the order-free digest of the files equals
the module's, in the store's dtype; `workbench masks` checks and reads a store's weights that way
without torch, with the masks the loaded pipeline gives; other weights fall back to the pipeline."""

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from workbench.analysis.weights import weights_from_files
from workbench.models.files import folder_digest, folder_of
from workbench.models.loading import weights_digest


def test_the_files_digest_as_the_module_in_the_stores_dtype(toy):
    folder = folder_of("toy")
    for comp in ("unet", "text_encoder"):
        module = getattr(toy, comp)
        assert folder_digest(folder, comp, "float32") == weights_digest(module)
        assert folder_digest(folder, comp, "float16") == weights_digest(copy.deepcopy(module).to(torch.float16))
    changed = copy.deepcopy(toy.unet)
    with torch.no_grad():
        changed.conv_in.weight[0, 0, 0, 0] += 1e-3
    assert folder_digest(folder, "unet", "float32") != weights_digest(changed)
    assert folder_digest(folder, "unet", "bfloat16") is None and folder_of("no/such/folder") is None


@pytest.fixture(scope="module")
def store(toy, tmp_path_factory):
    from workbench.prompts import get
    from workbench.recording import record

    return record(toy, get("texture:striped"), tmp_path_factory.mktemp("w") / "s.zarr", steps=3, progress=False)


def test_weights_from_the_files_are_the_pipelines(toy, store):
    from workbench.models import weights_of
    from workbench.store import open_store

    tree = open_store(store)
    found, total = weights_from_files(tree)
    by_model = weights_of(toy, tree)
    assert set(found) == set(by_model) and all(np.array_equal(found[s], by_model[s]) for s in found)
    assert total == sum(p.numel() for p in toy.unet.parameters())


def test_the_masks_verb_reads_the_files_without_torch_and_falls_back_for_other_weights(toy, store, tmp_path):
    from workbench.analysis import load_masks
    from workbench.editing.prune import as_dict
    from workbench.store import open_store

    out = tmp_path / "m.safetensors"
    code = ("import sys; from workbench.cli import main; "
            f"rc = main(['masks', {str(store)!r}, '--target', 'striped', '--reference', 'plain', '--t-hat', '2', '--out', {str(out)!r}]); "
            "print(rc, 'torch' in sys.modules)")  # fmt: skip
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert said[-2:] == ["0", "False"]
    from workbench.analysis import concept_masks
    from workbench.models import weights_of

    tree = open_store(store)
    want = as_dict(concept_masks(tree, weights_of(toy, tree), "striped", "plain", k=2, t_hat=2))
    got = as_dict(load_masks(out))
    assert set(got) == set(want) and all(np.array_equal(got[s], want[s]) for s in got)
    other = tmp_path / "other"
    toy.save_pretrained(other)
    from safetensors.torch import load_file, save_file

    unet = other / "unet" / "diffusion_pytorch_model.safetensors"
    w = load_file(unet)
    w["conv_in.weight"][0, 0, 0, 0] += 1.0
    save_file(w, unet)
    assert weights_from_files(tree, str(other)) is None  # not the store's weights: the files cannot vouch for them
