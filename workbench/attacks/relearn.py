"""The relearning attack: fine-tune the edited model briefly on images of the concept, and judge the
held-out target prompts after a few step counts (the ASR curve).

The images are the concept's calibration prompts drawn by the unedited model (``ConceptImages``:
``RelearnOptions.images`` of them, the prompts in turn, seed by seed), noised anew every step at a uniform
timestep; the loss is the model's own training objective on them (noise, velocity or flow target:
``objective_target``), not the unedited model's predictions (that is ``revival``). What trains: the
eraser's own tensors (an edit with weights: ESD, AC, UCE, ...) from their edited values, or else the
whole denoiser, with every pruned entry put back to zero after each step (ConceptPrune, P-ESD) and
inference-time edits (feature ablation) on throughout. Pruning and fine-tuning erasers are expected
to differ here; ``revival`` covers fine-tuning the pruned entries alone."""

from __future__ import annotations

import torch

from ..editing.edits import applied
from ..editing.examples import Examples, FreshAC
from ..editing.training import optimise, prediction_loss, trainable
from ..evaluation.generation import generate
from ..models.families import denoiser_of
from .methods import Attempt
from .methods.relearn import RelearnOptions
from .revival import masked_params
from .score import checkpoints


def objective_target(noise, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the denoiser is trained to predict at x_t: the scheduler's ``prediction_type`` (epsilon:
    the noise; v_prediction: the velocity; sample: x_0), or for flow matching (``noise`` None) the
    flow noise - x_0."""
    if noise is None:
        return eps - x0
    kind = noise.config.prediction_type
    if kind == "epsilon":
        return eps
    if kind == "v_prediction":
        return noise.get_velocity(x0, eps, t)
    if kind == "sample":
        return x0
    raise ValueError(f"relearning does not know the prediction type {kind!r} of this scheduler")


class ConceptImages(FreshAC):
    """The relearning data: ``pool`` images of ``prompts`` drawn by the model as it is when this is
    built (the unedited one), each step ``batch`` of them with new noise at a uniform timestep, and
    the training objective's target (``objective_target``); the conditioning is the image's own prompt."""

    def __init__(self, pipe, prompts: list[str], pool: int, steps: int, guidance: float, batch: int, seed: int):
        super().__init__(pipe, prompts, prompts, pool=pool, steps=steps, guidance=guidance, batch=batch, seed=seed)

    def _target(self, x, arg, w, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return objective_target(self.noise, x0.float(), noise, t)


def run(a: Attempt) -> tuple[list[bool], list[str]]:
    """Relearn the concept on ``a``'s edit for ``a.budget`` steps (``a.options``: ``RelearnOptions``);
    the verdicts at each checkpoint go to ``a.curve``, the last are the attack's."""
    options: RelearnOptions = a.options
    data = ConceptImages(
        a.pipe, [p.text for p in a.concept.target], options.images, a.steps, a.guidance, options.batch, a.seed
    )  # fmt: skip  (drawn before the edit is on: the unedited model's images)
    marks = checkpoints(a.budget, options.fractions)
    with applied(a.pipe, a.edit):
        named = dict(denoiser_of(a.pipe).named_parameters())
        group = {n: named[n] for n in (a.edit.weights or named)}
        held = {n: m.to(named[n].device) for n, m in masked_params(a.pipe, a.edit.masks).items()} if a.edit.masks else {}

        def step(it: int, ex: Examples):
            loss = prediction_loss(a.pipe, ex, torch.arange(len(ex)))
            return loss, float(loss.detach())

        def after(done: int) -> None:
            with torch.no_grad():
                for n, m in held.items():
                    named[n].masked_fill_(m, 0.0)  # the mask held: pruned entries stay pruned
            if done in marks:
                a.curve[done] = a.shown(generate(a.pipe, a.texts, a.seeds, a.steps, a.guidance), a.targets)

        with trainable(a.pipe, group):
            trace = optimise(list(group.values()), data.batches(a.budget), step, a.budget, "relearning", a.progress,
                             lr=options.lr, after=after)  # fmt: skip
    a.info.update(relearn={"trained": "the edit's tensors" if a.edit.weights else "the whole denoiser",
                           "tensors": len(group), "held_pruned": len(held)},
                  loss_first=trace[0], loss_last=trace[-1])  # fmt: skip
    return a.curve[marks[-1]], a.texts
