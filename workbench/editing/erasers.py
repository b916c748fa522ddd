"""Every eraser behind one call: ``make_edit(pipe, method, concept)`` makes the edit of a concept
(a name or a ``Concept``: docs/concepts.md) on any SD-family pipeline.

ConceptPrune records the concept's calibration pairs and keeps the skilled masks at k and t_hat;
ESD and AC fine-tune a parameter group with their objective; P-ESD and P-AC learn a pruning mask
with it, weights frozen. The pipeline's weights are left as they were: the edit is data.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..models.loading import model_hashes
from ..prompts.concepts import Concept, get_concept
from .edits import Edit
from .erase import finetune, frozen_examples, learn_masks, preservation_examples

METHODS = ("conceptprune", "esd", "ac", "pesd", "pac")
#: per method: iterations and learning rate when not given (the toy world's working points)
DEFAULTS = {"esd": (200, 1e-4), "ac": (200, 1e-4), "pesd": (200, 0.05), "pac": (200, 0.05)}


def make_edit(
    pipe,
    method: str,
    concept: str | Concept,
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
    steps: int | None = None,
    guidance: float | None = None,
    batch: int = 8,
    precision: str = "fp32",
    checkpointing: bool = False,
    workdir: str | Path | None = None,
    progress: bool = True,
) -> Edit:
    """One eraser's edit of ``concept`` on ``pipe`` (whose weights are left as they were).

    ``steps`` and ``guidance`` are the frozen model's sampling of the calibration prompts (default:
    the model's own). Learned masks (pesd, pac) take ``init='conceptprune'`` (start from
    ConceptPrune's mask at the same k and t_hat) and ``tune=GROUP`` (fine-tune that parameter group
    at ``tune_lr`` with the mask: the edit then holds masks and weights). ``precision`` ('bf16'
    autocast) and ``checkpointing`` (gradient checkpointing) fit SD-size training on one GPU."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {METHODS}")
    c = get_concept(concept)
    target, reference = list(c.target), list(c.anchor)
    t0 = time.time()
    info: dict = {"concept": c.name, "seed": seed, "weights_hash": model_hashes(pipe)}
    if c.source and c.source.endswith(".toml"):
        info["concept_file"] = c.source
    if steps is not None:
        info["steps"] = steps
    if guidance is not None:
        info["guidance"] = guidance
    if method == "conceptprune":
        masks = _conceptprune(pipe, target, reference, k, t_hat, steps, guidance, workdir, progress)
        info.update(k=k, t_hat=t_hat, site_filter=sites)
        edit = Edit(method, info, masks=masks)
    else:
        it, rate = DEFAULTS[method]
        iterations, lr = iterations or it, lr or rate
        objective = "ac" if method in ("ac", "pac") else "esd"
        ex = frozen_examples(pipe, [p.text for p in target], [p.seed for p in target], objective,
                             anchors=[p.text for p in reference], eta=eta, steps=steps, guidance=guidance)  # fmt: skip
        keep = (preservation_examples(pipe, [p.text for p in reference], [p.seed for p in reference], steps, guidance)
                if preserve else None)  # fmt: skip
        info.update(objective=objective, eta=eta, iterations=iterations, lr=lr, preserve=preserve, examples=len(ex),
                    precision=precision)  # fmt: skip
        if method in ("esd", "ac"):
            weights = finetune(pipe, ex, group=group, iterations=iterations, lr=lr, batch=batch, seed=seed, preserve=keep,
                               progress=progress, precision=precision, checkpointing=checkpointing)  # fmt: skip
            info.update(group=group, parameters=int(sum(v.numel() for v in weights.values())))
            edit = Edit(method, info, weights=weights)
        else:
            start = (_conceptprune(pipe, target, reference, k, t_hat, steps, guidance, workdir, progress)
                     if init == "conceptprune" else init)  # fmt: skip
            learned = learn_masks(pipe, ex, sites=sites, k=k, relaxation=relaxation, init=start, iterations=iterations, lr=lr,
                                  batch=batch, seed=seed, preserve=keep, tune=tune, tune_lr=tune_lr, progress=progress,
                                  precision=precision, checkpointing=checkpointing)  # fmt: skip
            info.update(k=k, relaxation=relaxation, init=init, site_filter=sites)
            if tune is not None:
                info.update(tune=tune, tune_lr=tune_lr, parameters=int(sum(v.numel() for v in learned.weights.values())))
            edit = learned.edit(method, info)
    if edit.masks is not None:
        edit.info["density"] = mask_density(edit.masks)
    edit.info["seconds"] = round(time.time() - t0, 2)
    return edit


def _conceptprune(pipe, target, reference, k, t_hat, steps, guidance, workdir, progress) -> dict[str, np.ndarray]:
    from ..analysis import concept_masks
    from ..models.sites import weights_of
    from ..prompts import PromptSet
    from ..recording import record
    from ..store import open_store
    from .prune import as_dict

    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="conceptprune-"))
    store = record(pipe, PromptSet(target + reference), folder / "calibration.zarr", steps=steps, guidance=guidance,
                   progress=progress)  # fmt: skip
    tree = open_store(store)
    return as_dict(concept_masks(tree, weights_of(pipe, tree), target[0].set, reference[0].set, k=k, t_hat=t_hat))


def mask_density(masks: dict[str, np.ndarray]) -> float:
    """Share of the masked sites' weights that are pruned."""
    return float(sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values()))
