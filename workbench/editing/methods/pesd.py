"""P-ESD (our reading of the robust-erasing paper: docs/robustness.md): a pruning mask learned
with ESD's objective over frozen weights, in ConceptPrune's mask format."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import FROM_CONCEPTPRUNE, GUIDED_AWAY, ESDTarget, LearnedMask
from . import EraserSpec, Setting
from .conceptprune import SPEC as CONCEPTPRUNE
from .esd import SPEC as ESD


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


def variants(quick: bool, its: int) -> list[Setting]:
    """The preservation term, ConceptPrune's mask as the start, the mask trained with ESD-x weights;
    in full, masks on other sites (the cross-attention values on every seed, with random controls)."""
    base = {"k": 10.0, "iterations": its}
    out = [
        Setting({**base, "preserve": True}, "k=10%", name="pesd+preserve", bases=("pesd",)),
        Setting({**base, "init": FROM_CONCEPTPRUNE}, "k=10%", name="pesd init conceptprune", bases=("pesd", CONCEPTPRUNE.name)),
    ]
    out += [
        Setting({**base, "tune": "esd-x", "tune_lr": lr}, f"k=10% lr={lr:g}", name="pesd+esd-x", bases=(ESD.name, "pesd"))
        for lr in ((1e-4,) if quick else (3e-5, 1e-4))
    ]
    if quick:
        return out
    to_v = {**base, "sites": "attn2.to_v"}
    return out + [
        Setting({**base, "sites": "ffn1"}, "k=10%", name="pesd on ffn1", bases=("pesd",)),
        # the mask over the cross-attention values erased most within the harm budget: every seed, random
        # controls of its size, k = 20 % too, and attacked beside the main settings
        Setting(to_v, "k=10%", name="pesd on attn2.to_v", bases=("pesd",), seeds="every", controls=True,
                attacked="pesd attn2.to_v k=10%"),
        Setting({**to_v, "k": 20.0}, "k=20%", name="pesd on attn2.to_v", bases=("pesd",)),
    ]  # fmt: skip


SPEC = EraserSpec(
    name="pesd",
    help="P-ESD: a pruning mask learned with ESD's objective, weights frozen (masks.safetensors)",
    options=PESDOptions,
    run=run,
    settings=settings,
    variants=variants,
    # ESD's sampling and batch; the mask's learning rate is ours (the paper states none)
    reference={"iterations": 200, "lr": 0.05, "batch": 1, "guidance": 3.0},
    claims=(CONCEPTPRUNE.name, ESD.name),
    order=3,
)
