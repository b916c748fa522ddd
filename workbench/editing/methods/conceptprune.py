"""ConceptPrune (Chavhan et al., ICLR 2025): record the concept's calibration pairs, keep the
skilled neurons' weights at k and t-hat as a pruning mask. Deterministic: one edit for every seed."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import MaskBudget
from . import EraserSpec, Setting


@dataclass(frozen=True)
class ConceptPruneOptions(MaskBudget):
    """k and t-hat (``MaskBudget``)."""


def run(pipe, concept, options: ConceptPruneOptions, run, info: dict):
    from ..edits import Edit
    from ..recipes import conceptprune_masks

    masks = conceptprune_masks(pipe, concept, options.k, options.t_hat, run)
    info.update(k=options.k, t_hat=options.t_hat, site_filter=",".join(sorted({fam for fam, _ in _families(pipe, masks)})))
    return Edit(SPEC.name, info, masks=masks)


def _families(pipe, masks):
    from ...models.sites import catalogue

    by_name = {s.name: s for s in catalogue(pipe)}
    return [(by_name[n].family, n) for n in masks]


def settings(size: str, iterations: int) -> list[Setting]:
    ks = (2.0, 10.0) if size == "quick" else (1.0, 2.0, 5.0, 10.0, 20.0)
    return [Setting({"k": k}, f"k={k:g}%", main=k == 2.0, column=k <= 5.0, repeat="never") for k in ks]


SPEC = EraserSpec(
    name="conceptprune",
    help="ConceptPrune: prune the skilled neurons' weights (masks.safetensors; weights untouched)",
    options=ConceptPruneOptions,
    run=run,
    settings=settings,
    seeded=False,
    order=0,
)
