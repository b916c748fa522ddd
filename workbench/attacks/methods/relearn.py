"""Relearning: fine-tune the erased model briefly on images of the concept drawn by the unedited
model, and see how fast the concept returns (an ASR curve over fine-tuning steps)."""

from __future__ import annotations

from . import AttackSpec, runner

SPEC = AttackSpec(
    "relearn",
    "fine-tune the edited model (the eraser's own tensors; the whole denoiser, pruned entries held at zero, for masks "
    "and inference-time edits) on 16 images of the concept from the unedited model; ASR after each of a few step counts",
    runner("workbench.attacks.relearn:run"),
    budget=40,
    unit="fine-tuning steps",
    changes="weights",
    examples=False,
    order=6,
)
