"""ESD (Gandikota et al., 2023): fine-tune a parameter group (ESD-x: the cross-attention) so that
its prediction for the concept follows the frozen model's, guided away from it by eta."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import GUIDED_AWAY, ESDTarget, FineTune
from . import WEIGHTS, EraserSpec, Setting


@dataclass(frozen=True)
class ESDOptions(FineTune, ESDTarget):
    """Training, the parameter group and eta."""


def run(pipe, concept, options: ESDOptions, run, info: dict):
    from ..recipes import Trained

    return Trained(pipe, SPEC.name, GUIDED_AWAY, concept, options, run, info).finetune(options.group)


def variants(quick: bool, iterations: int) -> list[Setting]:
    """The preservation term, at and between the main lrs."""
    return [Setting({"lr": lr, "iterations": iterations, "preserve": True}, f"lr={lr:g}", name="esd+preserve", bases=("esd",))
            for lr in ((1e-4,) if quick else (1e-4, 3e-4, 2e-4))]  # fmt: skip


def settings(size: str, iterations: int) -> list[Setting]:
    lrs = (1e-4,) if size == "quick" else (1e-4, 3e-4) if size == "core" else (3e-5, 1e-4, 3e-4)
    out = [Setting({"lr": lr, "iterations": iterations}, f"lr={lr:g}", main=lr == 1e-4, column=size != "full") for lr in lrs]
    if size == "full":  # ESD-u
        out.append(Setting({"lr": 3e-5, "iterations": iterations, "group": "esd-u"}, "ESD-u lr=3e-05"))
    return out


SPEC = EraserSpec(
    name="esd",
    help="ESD: fine-tune a parameter group (default ESD-x) against the concept (weights.safetensors)",
    options=ESDOptions,
    run=run,
    files=(WEIGHTS,),
    settings=settings,
    variants=variants,
    # rohitgandikota/erasing esd_sd.py: 200 iterations, lr 5e-5, batch 1, x_t sampled at guidance 3,
    # negative guidance 2 (eta 1), ESD-x
    reference={"iterations": 200, "lr": 5e-5, "batch": 1, "guidance": 3.0, "group": "esd-x"},
    title=lambda s: "esd-x lr=1e-4" if s.label == "lr=0.0001" else f"esd {s.label}",
    order=1,
)
