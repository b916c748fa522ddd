"""Every eraser behind one call: ``make_edit(pipe, method, concept)`` makes the edit of a concept
(a name or a ``Concept``: docs/concepts.md) on any SD-family pipeline.

ConceptPrune records the concept's calibration pairs and keeps the skilled masks at k and t_hat;
ESD and AC fine-tune a parameter group with their objective; P-ESD and P-AC learn a pruning mask
with it, weights frozen. The pipeline's weights are left as they were: the edit is data.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from ..models.loading import model_hashes, model_id
from ..prompts.concepts import Concept, get_concept
from .edits import Edit
from .erase import finetune, learn_masks, preservation_examples
from .examples import HELDOUT_SEED, PROTOCOLS, Cached, FreshAC, FreshESD, frozen_examples, objective_loss

METHODS = ("conceptprune", "esd", "ac", "pesd", "pac")
#: the reference code's settings, used on any model that states none of its own (``eraser_defaults``
#: on the pipeline class: the toy world's are in models/toyworld/pipeline.py). ESD: rohitgandikota/
#: erasing esd_sd.py (200 iterations, lr 5e-5, batch 1, x_t sampled at guidance 3, negative guidance 2,
#: i.e. eta 1, ESD-x). AC: nupurkmr9/concept-ablation's README for one GPU (200 steps, batch 4,
#: lr 2e-6 scaled by the batch: 8e-6, the cross-attention key and value matrices, anchor images
#: at 25 steps and guidance 6; its pool holds 1000). P-ESD / P-AC: ESD's and AC's sampling and
#: batch; the mask's learning rate is ours (the paper states none).
REFERENCE = {
    "esd": {"iterations": 200, "lr": 5e-5, "batch": 1, "guidance": 3.0, "group": "esd-x"},
    "ac": {"iterations": 200, "lr": 8e-6, "batch": 4, "guidance": 6.0, "pool_steps": 25, "group": "esd-x-kv", "pool": 1000},
    "pesd": {"iterations": 200, "lr": 0.05, "batch": 1, "guidance": 3.0},
    "pac": {"iterations": 200, "lr": 0.05, "batch": 4, "guidance": 6.0, "pool_steps": 25, "pool": 1000},
}
#: draws of the train / held-out loss measured on every trained edit (the generalisation gap)
GAP_DRAWS = 64


def defaults(pipe, method: str) -> dict:
    """The settings ``make_edit`` uses for ``method`` on ``pipe`` when not given: the model's own
    ``eraser_defaults`` where its class states them, else the reference code's (``REFERENCE``)."""
    own = getattr(type(pipe), "eraser_defaults", {})
    return {**REFERENCE.get(method, {}), **own.get(method, {})}


def make_edit(
    pipe,
    method: str,
    concept: str | Concept,
    k: float = 2.0,
    t_hat: int = 10,
    iterations: int | None = None,
    lr: float | None = None,
    group: str | None = None,
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
    batch: int | None = None,
    precision: str = "fp32",
    checkpointing: bool = False,
    workdir: str | Path | None = None,
    progress: bool = True,
    examples: str = "fresh",
    pool: int | None = None,
    gap: int = GAP_DRAWS,
) -> Edit:
    """One eraser's edit of ``concept`` on ``pipe`` (whose weights are left as they were).

    ``examples``: 'fresh' (the reference protocol: new x_t every iteration, ``editing.examples``)
    or 'cached' (one fixed set sampled from the calibration prompts' own seeds: faster, a deviation).
    Settings not given come from ``defaults(pipe, method)``. ``steps`` and ``guidance``: the frozen
    model's sampling (cached: default the model's own; fresh: the reference's guidance); ``pool``:
    AC's anchor images. ``gap``: draws of the train / held-out loss kept in the edit's info
    (0: not measured). ConceptPrune records at the model's own guidance unless given. Learned masks (pesd, pac) take ``init='conceptprune'`` (start from
    ConceptPrune's mask at the same k and t_hat) and ``tune=GROUP`` (fine-tune that parameter group
    at ``tune_lr`` with the mask: the edit then holds masks and weights). ``precision`` ('bf16'
    autocast) and ``checkpointing`` (gradient checkpointing) fit SD-size training on one GPU."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {METHODS}")
    if examples not in PROTOCOLS:
        raise ValueError(f"unknown examples protocol {examples!r}: use one of {PROTOCOLS}")
    c = get_concept(concept)
    c.check_model(model_id(pipe))
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
        d = defaults(pipe, method)
        iterations, lr, batch = iterations or d["iterations"], lr or d["lr"], batch or d["batch"]
        objective = "ac" if method in ("ac", "pac") else "esd"
        texts, seeds, anchors = [p.text for p in target], [p.seed for p in target], [p.text for p in reference]
        if examples == "cached":  # the old protocol: the model's own guidance unless given
            ex = frozen_examples(pipe, texts, seeds, objective, anchors=anchors, eta=eta, steps=steps, guidance=guidance)
            source = Cached(ex, batch, seed, partial(frozen_examples, pipe, texts, [s + HELDOUT_SEED for s in seeds], objective,
                                                     anchors=anchors, eta=eta, steps=steps, guidance=guidance))  # fmt: skip
            info.update(examples_cached=len(ex))
        elif objective == "esd":
            g = guidance if guidance is not None else d.get("guidance")
            source = FreshESD(pipe, texts, eta=eta, steps=steps, guidance=g, batch=batch, seed=seed)
            info.update(sampling_guidance=source.guidance)
        else:
            g = guidance if guidance is not None else d.get("guidance")
            source = FreshAC(pipe, texts, anchors, pool=pool or d.get("pool", 1000), steps=steps or d.get("pool_steps"),
                             guidance=g, batch=batch, seed=seed)  # fmt: skip
            info.update(sampling_guidance=source.guidance, pool=source.pool, pool_steps=source.steps)
        keep = (preservation_examples(pipe, [p.text for p in reference], [p.seed for p in reference], steps, guidance)
                if preserve else None)  # fmt: skip
        info.update(objective=objective, eta=eta, iterations=iterations, lr=lr, batch=batch, preserve=preserve,
                    examples=examples, precision=precision)  # fmt: skip
        if method in ("esd", "ac"):
            group = group or d.get("group", "esd-x")
            weights = finetune(pipe, source, group=group, iterations=iterations, lr=lr, batch=batch, seed=seed, preserve=keep,
                               progress=progress, precision=precision, checkpointing=checkpointing)  # fmt: skip
            info.update(group=group, parameters=int(sum(v.numel() for v in weights.values())))
            edit = Edit(method, info, weights=weights)
        else:
            start = (_conceptprune(pipe, target, reference, k, t_hat, steps, guidance, workdir, progress)
                     if init == "conceptprune" else init)  # fmt: skip
            learned = learn_masks(pipe, source, sites=sites, k=k, relaxation=relaxation, init=start, iterations=iterations,
                                  lr=lr, batch=batch, seed=seed, preserve=keep, tune=tune, tune_lr=tune_lr,
                                  progress=progress, precision=precision, checkpointing=checkpointing)  # fmt: skip
            info.update(k=k, relaxation=relaxation, init=init, site_filter=sites)
            if tune is not None:
                info.update(tune=tune, tune_lr=tune_lr, parameters=int(sum(v.numel() for v in learned.weights.values())))
            edit = learned.edit(method, info)
        if gap:  # the objective's loss where it trained and on seeds it never saw
            train, held = source.train(gap, iterations), source.heldout(gap, iterations)
            edit.info.update(train_loss=objective_loss(pipe, train, edit), heldout_loss=objective_loss(pipe, held, edit),
                             gap_draws=len(train))  # fmt: skip
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
