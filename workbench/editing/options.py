"""What every eraser's options are made of, as typed data with no torch: the parameter groups,
mask relaxations and example protocols by name, the shared options dataclasses of the trained
erasers, and ``EraseRun``, the settings of one run that are no eraser's own (seed, sampling,
precision, where calibration goes, progress).

A field's ``metadata`` holds its ``help`` and, where the values are few, its ``choices``: the CLI
builds ``workbench erase``'s options from them, and ``registry.check_choices`` validates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..models.families import MODEL_FAMILIES

#: the erasing objectives: ESD's negatively guided target, AC's anchor prediction
GUIDED_AWAY, ANCHORED = OBJECTIVES = ("guided-away", "anchored")
#: parameter groups for fine-tuning, as every registered model family names them (SD UNets: ESD-x, the
#: cross-attention; esd-x-kv, its key/value matrices only; ESD-u, the rest)
GROUPS = tuple(dict.fromkeys(g for family in MODEL_FAMILIES.specs() for g in family.groups))
RELAXATIONS = ("ste-topk", "hard-concrete", "sigmoid")
#: a learned mask's start: small random logits, |W| scaled, or ConceptPrune's mask at the same k and t-hat
FROM_CONCEPTPRUNE = "conceptprune"
INITS = ("uniform", "wanda", FROM_CONCEPTPRUNE)
#: where a trained eraser's examples come from: new x_t every iteration (the reference code) or one cached set
PROTOCOLS = ("fresh", "cached")
PRECISIONS = ("fp32", "bf16", "fp16")
#: draws of the train / held-out loss measured on every trained edit (the generalisation gap)
GAP_DRAWS = 64


def option(default, help: str, choices: tuple | None = None):
    """A dataclass field with its help and allowed values."""
    return field(default=default, metadata={"help": help, **({"choices": choices} if choices else {})})


@dataclass(frozen=True)
class EraseRun:
    """Settings of one erasing run that belong to no eraser: the seed, the frozen model's sampling
    (``steps``, ``guidance``, image ``size``: the model's own when None), training precision and gradient
    checkpointing, where calibration recordings go, progress bars, and the draws of the train /
    held-out loss kept in the edit's info (``gap``; 0: not measured)."""

    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    size: int | None = option(
        None, "image side of the frozen model's samples (default: the model's own; FLUX's ESD reference trains at 512)"
    )
    precision: str = option("fp32", "the denoiser's forward in training (weights and Adam stay float32)", PRECISIONS)
    checkpointing: bool = False
    workdir: str | Path | None = None
    progress: bool = True
    gap: int = GAP_DRAWS


@dataclass(frozen=True)
class MaskBudget:
    """ConceptPrune's mask parameters."""

    k: float = option(2.0, "percent of each weight row (ConceptPrune's k; the paper: 1-5)")
    t_hat: int = option(10, "aggregate the first t-hat denoiser calls (the paper: 9-20)")


@dataclass(frozen=True)
class Training:
    """What every trained eraser takes (None: the model's ``eraser_defaults``, else the reference's)."""

    iterations: int | None = option(None, "training iterations (default: the model's, else the reference's 200)")
    lr: float | None = option(None, "learning rate (default: the reference's on SD, 5e-5 ESD, 8e-6 AC; the toy's "
                              "1e-4; 0.05 for mask logits)")  # fmt: skip
    batch: int | None = option(None, "training examples per iteration (default: the reference's, 1 for ESD and 4 for "
                               "AC; the toy world's: 1)")  # fmt: skip
    preserve: bool = option(False, "also hold the frozen prediction for the reference prompts")
    examples: str = option("fresh", "fresh: new x_t every iteration, as the reference code trains; cached: one fixed "
                           "set from the calibration prompts' own seeds, faster, a deviation", PROTOCOLS)  # fmt: skip


@dataclass(frozen=True)
class ESDTarget:
    """ESD's target: the frozen prediction guided away from the concept by ``eta``."""

    eta: float = option(1.0, "ESD's guidance strength eta")


@dataclass(frozen=True)
class Anchors:
    """AC's anchor images."""

    pool: int | None = option(None, "ac/pac, fresh: anchor images drawn once (default: the reference's 1000; toy 128)")


@dataclass(frozen=True)
class FineTune(Training):
    """A fine-tuned parameter group (ESD, AC)."""

    group: str | None = option(None, "the parameters trained (default: the reference's, esd-x for ESD, esd-x-kv for AC)",
                               GROUPS)  # fmt: skip


@dataclass(frozen=True)
class LearnedMask(Training, MaskBudget):
    """A pruning mask learned with an erasing objective over frozen weights (P-ESD, P-AC)."""

    relaxation: str = option("ste-topk", "the mask relaxation", RELAXATIONS)
    init: str = option("uniform", "the mask logits' start (conceptprune: its mask at the same k and t-hat)", INITS)
    sites: str | None = option(None, "the sites whose weights are masked: site families or globs over module paths, "
                               "comma-separated (default: the model family's, ffn2 on UNets; `workbench sites` lists them)")  # fmt: skip
    tune: str | None = option(None, "also fine-tune this parameter group with the mask (the edit holds both)", GROUPS)
    tune_lr: float = option(1e-4, "with tune: the weights' learning rate")
