"""P-ESD (our reading of the robust-erasing paper: docs/robustness.md): a pruning mask learned
with ESD's objective over frozen weights, in ConceptPrune's mask format."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import GUIDED_AWAY, ESDTarget, LearnedMask
from . import EraserSpec, Setting


@dataclass(frozen=True)
class PESDOptions(LearnedMask, ESDTarget):
    """The learned mask's options and eta."""


def run(pipe, concept, options: PESDOptions, run, info: dict):
    from ..recipes import Trained

    return Trained(pipe, SPEC.name, GUIDED_AWAY, concept, options, run, info).learn_masks(concept)


def settings(size: str, iterations: int) -> list[Setting]:
    pks = (10.0,) if size in ("quick", "core") else (2.0, 10.0, 20.0)
    out = [Setting({"k": k, "iterations": iterations}, f"k={k:g}%", main=k == 10.0, column=k == 10.0 and size == "core",
                   controls=True) for k in pks]  # fmt: skip
    if size == "full":  # the other relaxations, an init
        out += [
            Setting({"k": 10.0, "iterations": iterations, "relaxation": r}, f"k=10% {r}") for r in ("hard-concrete", "sigmoid")
        ]
        out += [Setting({"k": 10.0, "iterations": iterations, "init": "wanda"}, "k=10% init wanda")]
    return out


SPEC = EraserSpec(
    name="pesd",
    help="P-ESD: a pruning mask learned with ESD's objective, weights frozen (masks.safetensors)",
    options=PESDOptions,
    run=run,
    settings=settings,
    # ESD's sampling and batch; the mask's learning rate is ours (the paper states none)
    reference={"iterations": 200, "lr": 0.05, "batch": 1, "guidance": 3.0},
    claims=("conceptprune", "esd"),
    order=3,
)
