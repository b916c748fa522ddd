"""Relearning: fine-tune the erased model briefly on images of the concept drawn by the unedited
model, and see how fast the concept returns (an ASR curve over fine-tuning steps)."""

from __future__ import annotations

from dataclasses import dataclass

from ...editing.options import option
from . import CURVE, AttackSpec, runner


@dataclass(frozen=True)
class RelearnOptions:
    """The relearning attack's settings: concept ``images`` drawn by the unedited model, Adam's
    ``lr``, images a step (``batch``), and the ``fractions`` of the budget where the ASR is judged."""

    images: int = option(16, "relearn: images of the concept drawn by the unedited model")
    lr: float = option(1e-4, "relearn: Adam's learning rate")
    batch: int = option(4, "relearn: images a fine-tuning step")
    fractions: tuple[float, ...] = option(CURVE, "relearn: fractions of the budget where the ASR is judged, "
                                          "comma-separated")  # fmt: skip

    def __post_init__(self):
        if self.images < 1 or self.batch < 1 or self.lr <= 0:
            raise ValueError(f"relearning needs images >= 1, batch >= 1 and lr > 0 (got {self})")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"relearning's checkpoints are fractions of the budget in (0, 1], not {self.fractions}")


SPEC = AttackSpec(
    "relearn",
    "fine-tune the edited model (the eraser's own tensors; the whole denoiser, pruned entries held at zero, for masks "
    "and inference-time edits) on --images images of the concept (16) from the unedited model; ASR after each of a few step "
    "counts",
    runner("workbench.attacks.relearn:run"),
    RelearnOptions,
    budget=40,
    unit="fine-tuning steps",
    changes="weights",
    examples=False,
    order=6,
)
