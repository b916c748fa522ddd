"""P-AC (our reading of the robust-erasing paper: docs/robustness.md): a pruning mask learned
with AC's objective over frozen weights, in ConceptPrune's mask format."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import ANCHORED, Anchors, LearnedMask
from . import EraserSpec, Setting
from .ac import SPEC as AC
from .conceptprune import SPEC as CONCEPTPRUNE

#: P-AC's one k in every grid, the quick one included (the attack table names it by this k)
PAC_K = 20.0


@dataclass(frozen=True)
class PACOptions(LearnedMask, Anchors):
    """The learned mask's options and the anchor pool."""


def run(pipe, concept, options: PACOptions, run, info: dict):
    from ..recipes import Trained

    return Trained(pipe, SPEC.name, ANCHORED, concept, options, run, info).learn_masks(concept)


def settings(size: str, iterations: int) -> list[Setting]:
    return [Setting({"k": PAC_K, "iterations": iterations}, f"k={PAC_K:g}%", main=True, column=size == "core", repeat="every")]


SPEC = EraserSpec(
    name="pac",
    help="P-AC: a pruning mask learned with AC's objective, weights frozen (masks.safetensors)",
    options=PACOptions,
    run=run,
    settings=settings,
    # AC's sampling and batch; the mask's learning rate is ours (the paper states none)
    reference={"iterations": 200, "lr": 0.05, "batch": 4, "guidance": 6.0, "pool_steps": 25, "pool": 1000},
    claims=(AC.name, CONCEPTPRUNE.name),
    order=4,
)
