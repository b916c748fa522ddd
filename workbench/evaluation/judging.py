"""Judge a concept's held-out prompts on a model: ``evaluate(pipe, concept, judge)``.

The concept's evaluation prompts are generated once (memoised by the weights) and judged; a
``Reading`` holds the concept's rate on the target prompts, the degraded share over all images,
each attribute's accuracy on the other prompts, the judge's utility figures, and the per-image
verdicts. ``summary()`` has the keys of ``workbench demo --json``; ``harm.harm`` compares two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..models.families import denoiser_of
from ..models.loading import generation_defaults
from .generation import images_of
from .judges import Judge, Verdicts, judge_of


@dataclass
class Reading:
    concept_rate: float
    degraded_rate: float
    other_accuracy: dict[str, float]
    utility: dict[str, float]
    verdicts: Verdicts
    images: torch.Tensor = field(repr=False)

    def summary(self) -> dict:
        return {"concept_rate": self.concept_rate, "degraded_rate": self.degraded_rate, "other_accuracy": self.other_accuracy,
                **self.utility}  # fmt: skip


def settings(pipe, steps: int | None = None, guidance: float | None = None) -> tuple[int, float]:
    """Steps and guidance: the given ones, else the model's own (``generation_defaults``)."""
    d = generation_defaults(pipe)
    return int(d["steps"] if steps is None else steps), float(d["guidance"] if guidance is None else guidance)


def read(judge: Judge, concept, images: torch.Tensor) -> Reading:
    """A reading of ``images`` (one per evaluation prompt of ``concept``, in order)."""
    prompts = list(concept.evaluation)
    if len(images) != len(prompts):
        raise ValueError(f"got {len(images)} images for {len(prompts)} evaluation prompts of {concept.name!r}")
    v = judge(images, prompts)
    shows = np.asarray(concept.shows)
    tgt, oth = np.flatnonzero(shows), np.flatnonzero(~shows)
    rate = float(v.shown[tgt].mean())
    degraded = float(v.degraded.mean()) if v.degraded is not None else float("nan")
    acc = {a: float(c[oth].mean()) for a, c in v.correct.items()} if len(oth) else {}
    utility = judge.utility(images[oth], [prompts[i] for i in oth]) if len(oth) > 1 else {}
    return Reading(rate, degraded, acc, utility, v, images)


def evaluate(pipe, concept, judge=None, steps: int | None = None, guidance: float | None = None) -> Reading:
    """Generate the concept's evaluation prompts on ``pipe`` (as it is now: apply an edit around the
    call) and judge them; ``judge`` None takes the concept's own."""
    steps, guidance = settings(pipe, steps, guidance)
    j = judge_of(judge, concept, device=str(denoiser_of(pipe).device))
    return read(j, concept, images_of(pipe, list(concept.evaluation), steps, guidance))
