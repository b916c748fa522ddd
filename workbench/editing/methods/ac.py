"""Concept Ablation (Kumari et al., 2023): fine-tune the cross-attention key and value matrices
so that the concept's prediction follows the frozen model's prediction for its anchor's images."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import ANCHORED, Anchors, FineTune
from . import WEIGHTS, EraserSpec, Setting


@dataclass(frozen=True)
class ACOptions(FineTune, Anchors):
    """Training, the parameter group and the anchor pool."""


def run(pipe, concept, options: ACOptions, run, info: dict):
    from ..recipes import Trained

    return Trained(pipe, SPEC.name, ANCHORED, concept, options, run, info).finetune(options.group)


def settings(size: str, iterations: int) -> list[Setting]:
    lrs = (1e-4,) if size in ("quick", "core") else (3e-5, 1e-4, 3e-4)
    return [Setting({"lr": lr, "iterations": iterations}, f"lr={lr:g}", main=lr == 1e-4, column=lr == 1e-4 and size == "core",
                    repeat="every") for lr in lrs]  # fmt: skip


SPEC = EraserSpec(
    name="ac",
    help="AC: fine-tune the cross-attention keys and values towards the anchor (weights.safetensors)",
    options=ACOptions,
    run=run,
    files=(WEIGHTS,),
    settings=settings,
    # nupurkmr9/concept-ablation's README for one GPU: 200 steps, batch 4, lr 2e-6 scaled by the batch (8e-6),
    # the cross-attention key and value matrices, anchor images at 25 steps and guidance 6, a pool of 1000
    reference={"iterations": 200, "lr": 8e-6, "batch": 4, "guidance": 6.0, "pool_steps": 25, "group": "esd-x-kv", "pool": 1000},
    title=lambda s: "ac lr=1e-4" if s.label == "lr=0.0001" else f"ac {s.label}",
    order=2,
)
