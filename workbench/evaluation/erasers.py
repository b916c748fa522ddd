"""Every eraser behind one call, on the toy world: make the edit, then read the oracle before and after.

``make_edit(pipe, method, concept)`` runs ConceptPrune (record the calibration pairs, skilled
masks at k and t_hat), ESD or AC (fine-tune a parameter group), or P-ESD / P-AC (learn a pruning
mask with that objective, weights frozen); ``erase_and_judge`` adds the oracle's readings with the
keys of ``workbench demo --json``.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..editing.edits import Edit, applied
from ..editing.erase import Examples, finetune, frozen_examples, learn_masks, preservation_examples
from ..models.loading import model_hashes
from ..prompts import get
from .toy import attribute_of, eval_images, toy_evaluate

METHODS = ("conceptprune", "esd", "ac", "pesd", "pac")
#: per method: iterations and learning rate when not given (the scratch runs' working points)
DEFAULTS = {"esd": (200, 1e-4), "ac": (200, 1e-4), "pesd": (200, 0.05), "pac": (200, 0.05)}


def calibration(concept: str):
    """The toy world's paired calibration prompts of a concept: (target prompts, reference prompts)."""
    attr = attribute_of(concept)
    if attr not in ("texture", "shape") or concept == "plain":
        raise ValueError(
            f"{concept!r}: erase a texture (striped, dotted, checkered) or a shape (circle, square, triangle, cross)"
        )
    ps = get(f"{attr}:{concept}")
    target = [p for p in ps if p.set == concept]
    reference = [p for p in ps if p.set != concept]
    return target, reference


def make_edit(
    pipe,
    method: str,
    concept: str,
    k: float = 2.0,
    t_hat: int = 10,
    iterations: int | None = None,
    lr: float | None = None,
    group: str = "esd-x",
    relaxation: str = "ste-topk",
    init: str = "uniform",
    sites: str = "ffn2",
    eta: float = 1.0,
    preserve: bool = False,
    tune: str | None = None,
    tune_lr: float = 1e-4,
    seed: int = 0,
    workdir: str | Path | None = None,
    progress: bool = True,
) -> Edit:
    """One eraser's edit of ``concept`` on ``pipe`` (whose weights are left as they were).

    Learned masks (pesd, pac) take ``init='conceptprune'`` (start from ConceptPrune's mask at the same
    k and t_hat) and ``tune=GROUP`` (fine-tune that parameter group at ``tune_lr`` with the mask: the
    edit then holds masks and weights)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {METHODS}")
    target, reference = calibration(concept)
    t0 = time.time()
    info: dict = {"concept": concept, "seed": seed, "weights_hash": model_hashes(pipe)}
    if method == "conceptprune":
        masks = _conceptprune(pipe, target, reference, concept, k, t_hat, workdir, progress)
        info.update(k=k, t_hat=t_hat, site_filter=sites)
        edit = Edit(method, info, masks=masks)
    else:
        it, rate = DEFAULTS[method]
        iterations, lr = iterations or it, lr or rate
        objective = "ac" if method in ("ac", "pac") else "esd"
        ex = frozen_examples(pipe, [p.text for p in target], [p.seed for p in target], objective,
                             anchors=[p.text for p in reference], eta=eta)  # fmt: skip
        keep = preservation_examples(pipe, [p.text for p in reference], [p.seed for p in reference]) if preserve else None
        info.update(objective=objective, eta=eta, iterations=iterations, lr=lr, preserve=preserve, examples=len(ex))
        if method in ("esd", "ac"):
            weights = finetune(pipe, ex, group=group, iterations=iterations, lr=lr, seed=seed, preserve=keep, progress=progress)
            info.update(group=group, parameters=int(sum(v.numel() for v in weights.values())))
            edit = Edit(method, info, weights=weights)
        else:
            start = (
                _conceptprune(pipe, target, reference, concept, k, t_hat, workdir, progress) if init == "conceptprune" else init
            )
            learned = learn_masks(pipe, ex, sites=sites, k=k, relaxation=relaxation, init=start, iterations=iterations, lr=lr,
                                  seed=seed, preserve=keep, tune=tune, tune_lr=tune_lr, progress=progress)  # fmt: skip
            info.update(k=k, relaxation=relaxation, init=init, site_filter=sites)
            if tune is not None:
                info.update(tune=tune, tune_lr=tune_lr, parameters=int(sum(v.numel() for v in learned.weights.values())))
            edit = learned.edit(method, info)
    if edit.masks is not None:
        edit.info["density"] = mask_density(edit.masks)
    edit.info["seconds"] = round(time.time() - t0, 2)
    return edit


def _conceptprune(pipe, target, reference, concept, k, t_hat, workdir, progress) -> dict[str, np.ndarray]:
    from ..analysis import concept_masks
    from ..editing.prune import as_dict
    from ..models.sites import weights_of
    from ..prompts import PromptSet
    from ..recording import record
    from ..store import open_store

    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="conceptprune-"))
    store = record(pipe, PromptSet(target + reference), folder / "calibration.zarr", progress=progress)
    tree = open_store(store)
    return as_dict(concept_masks(tree, weights_of(pipe, tree), concept, reference[0].set, k=k, t_hat=t_hat))


def mask_density(masks: dict[str, np.ndarray]) -> float:
    """Share of the masked sites' weights that are pruned."""
    return float(sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values()))


@torch.no_grad()
def objective_loss(pipe, ex: Examples, edit: Edit | None = None, batch: int = 50) -> float:
    """Mean squared error of the (edited) model's prediction against the examples' targets, over all
    of them: how far an edit meets the erasing objective (ESD's or AC's), whatever made it."""
    ctx = applied(pipe, edit) if edit is not None else contextlib.nullcontext()
    with ctx:
        pred = torch.cat([pipe.unet(ex.x[i : i + batch], ex.t[i : i + batch], encoder_hidden_states=ex.cond[i : i + batch]).sample
                          for i in range(0, len(ex), batch)])  # fmt: skip
    return float(torch.nn.functional.mse_loss(pred.float(), ex.target.float()))


def esd_examples(pipe, concept: str) -> Examples:
    """ESD's training examples of a toy concept (its calibration target prompts, eta = 1)."""
    target, _ = calibration(concept)
    return frozen_examples(pipe, [p.text for p in target], [p.seed for p in target], "esd")


def erase_and_judge(pipe, oracle, edit: Edit, n_per: int = 2, steps: int = 25) -> dict:
    """The oracle's readings of the held-out prompts before and after the edit (``demo --json`` keys)."""
    concept = edit.info["concept"]
    attr = attribute_of(concept)
    before = toy_evaluate(pipe, oracle, attr, concept, n_per=n_per, steps=steps, images=eval_images(pipe, n_per, steps))
    with applied(pipe, edit):
        after = toy_evaluate(pipe, oracle, attr, concept, n_per=n_per, steps=steps)
    out = {"method": edit.method, "concept": concept, "seconds": edit.info.get("seconds")}
    if edit.masks is not None:
        out["density"] = edit.info["density"]
    out.update(
        before=before.summary(), after=after.summary(), options={k: v for k, v in edit.info.items() if k != "weights_hash"}
    )
    return out
