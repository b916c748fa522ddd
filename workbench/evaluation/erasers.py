"""Erasers judged: ``erase_and_judge`` reads a concept's held-out prompts before and after an
edit with the concept's judge (the keys of ``workbench demo --json``, plus the harm); and the
erasing objective's loss of an edit (``objective_loss``). The erasers themselves are
``editing.make.make_edit`` over the registry ``editing.methods.ERASERS``.
"""

from __future__ import annotations

from ..editing.edits import Edit, applied
from ..editing.examples import Examples, FreshESD, frozen_examples, objective_loss
from ..editing.make import make_edit, mask_density
from ..editing.methods import ERASERS, esd
from ..editing.options import GUIDED_AWAY
from ..models.families import denoiser_of
from ..prompts.concepts import get_concept
from .harm import harm
from .judges import judge_of
from .judging import evaluate

__all__ = [
    "ERASERS",
    "calibration",
    "erase_and_judge",
    "esd_examples",
    "esd_heldout",
    "make_edit",
    "mask_density",
    "objective_loss",
]


def calibration(concept):
    """A concept's paired calibration prompts: (target prompts, anchor prompts)."""
    c = get_concept(concept)
    return list(c.target), list(c.anchor)


def esd_examples(pipe, concept, steps: int | None = None, guidance: float | None = None) -> Examples:
    """ESD's cached training examples of a concept (its calibration target prompts and their seeds, eta = 1)."""
    target, _ = calibration(concept)
    return frozen_examples(pipe, [p.text for p in target], [p.seed for p in target], GUIDED_AWAY, steps=steps, guidance=guidance)


def esd_heldout(pipe, concept, n: int = 64, steps: int | None = None, guidance: float | None = None) -> Examples:
    """``n`` of ESD's examples of a concept drawn as the reference protocol draws them (batch 1, seed
    0), from seeds no training sees: one fixed set on which every edit's ESD loss is comparable."""
    from ..editing.recipes import defaults

    target, _ = calibration(concept)
    g = guidance if guidance is not None else defaults(pipe, esd.SPEC.name).get("guidance")
    return FreshESD(pipe, [p.text for p in target], steps=steps, guidance=g, batch=1, seed=0).heldout(n)


def erase_and_judge(pipe, judge, edit: Edit, n_per: int = 2, steps: int | None = None, guidance: float | None = None,
                    concept=None) -> dict:  # fmt: skip
    """The judge's readings of the concept's held-out prompts before and after the edit (``demo
    --json`` keys, and ``harm``). ``judge``: a Judge, a spec ('toy', 'nudenet', 'clip:FOLDER', ...),
    the toy oracle, or None for the concept's own; ``concept`` defaults to the edit's."""
    c = get_concept(concept if concept is not None else edit.info.get("concept_file", edit.info["concept"]), n_per=n_per)
    judge = judge_of(judge, c, device=str(denoiser_of(pipe).device))  # built once for both readings
    before = evaluate(pipe, c, judge, steps, guidance)
    with applied(pipe, edit):
        after = evaluate(pipe, c, judge, steps, guidance)
    out = {"method": edit.method, "concept": c.name, "seconds": edit.info.get("seconds")}
    if edit.masks is not None:
        out["density"] = edit.info["density"]
    b, a = before.summary(), after.summary()
    out.update(before=b, after=a, harm=harm(b, a).summary(), options={k: v for k, v in edit.info.items() if k != "weights_hash"})
    return out
