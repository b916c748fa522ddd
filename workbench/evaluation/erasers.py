"""Erasers judged: ``erase_and_judge`` reads a concept's held-out prompts before and after an
edit with the concept's judge (the keys of ``workbench demo --json``, plus the harm); and the
erasing objective's loss of an edit (``objective_loss``). The erasers themselves are
``editing.erasers.make_edit``.
"""

from __future__ import annotations

import contextlib

import torch

from ..editing.edits import Edit, applied
from ..editing.erase import Examples, frozen_examples
from ..editing.erasers import METHODS, make_edit, mask_density
from ..prompts.concepts import get_concept
from .harm import harm
from .judges import judge_of
from .judging import evaluate

__all__ = ["METHODS", "calibration", "erase_and_judge", "esd_examples", "make_edit", "mask_density", "objective_loss"]


def calibration(concept):
    """A concept's paired calibration prompts: (target prompts, anchor prompts)."""
    c = get_concept(concept)
    return list(c.target), list(c.anchor)


@torch.no_grad()
def objective_loss(pipe, ex: Examples, edit: Edit | None = None, batch: int = 50) -> float:
    """Mean squared error of the (edited) model's prediction against the examples' targets, over all
    of them: how far an edit meets the erasing objective (ESD's or AC's), whatever made it."""
    ctx = applied(pipe, edit) if edit is not None else contextlib.nullcontext()
    with ctx:
        dev = next(pipe.unet.parameters()).device
        pred = torch.cat([pipe.unet(ex.x[i : i + batch].to(dev), ex.t[i : i + batch].to(dev),
                                    encoder_hidden_states=ex.cond[i : i + batch].to(dev),
                                    added_cond_kwargs=ex.added_at(slice(i, i + batch), dev)).sample.cpu()
                          for i in range(0, len(ex), batch)])  # fmt: skip
    return float(torch.nn.functional.mse_loss(pred.float(), ex.target.float()))


def esd_examples(pipe, concept, steps: int | None = None, guidance: float | None = None) -> Examples:
    """ESD's training examples of a concept (its calibration target prompts, eta = 1)."""
    target, _ = calibration(concept)
    return frozen_examples(pipe, [p.text for p in target], [p.seed for p in target], "esd", steps=steps, guidance=guidance)


def erase_and_judge(pipe, judge, edit: Edit, n_per: int = 2, steps: int | None = None, guidance: float | None = None,
                    concept=None) -> dict:  # fmt: skip
    """The judge's readings of the concept's held-out prompts before and after the edit (``demo
    --json`` keys, and ``harm``). ``judge``: a Judge, a spec ('toy', 'nudenet', 'clip:FOLDER', ...),
    the toy oracle, or None for the concept's own; ``concept`` defaults to the edit's."""
    c = get_concept(concept if concept is not None else edit.info.get("concept_file", edit.info["concept"]), n_per=n_per)
    judge = judge_of(judge, c, device=str(pipe.unet.device))  # built once for both readings
    before = evaluate(pipe, c, judge, steps, guidance)
    with applied(pipe, edit):
        after = evaluate(pipe, c, judge, steps, guidance)
    out = {"method": edit.method, "concept": c.name, "seconds": edit.info.get("seconds")}
    if edit.masks is not None:
        out["density"] = edit.info["density"]
    b, a = before.summary(), after.summary()
    out.update(before=b, after=a, harm=harm(b, a).summary(), options={k: v for k, v in edit.info.items() if k != "weights_hash"})
    return out
