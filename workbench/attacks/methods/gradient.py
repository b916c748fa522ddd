"""White-box prompt attacks by gradient: UnlearnDiffAtk-style discrete tokens, soft prompts, and
textual inversion, each on the erasing loss of the unedited model's trajectories."""

from __future__ import annotations

from . import AttackSpec, runner

GRADIENT = "workbench.attacks.runners:gradient"
SPECS = (
    AttackSpec("unlearndiff", "k adversarial prefix tokens: a softmax relaxation over the vocabulary projected to real tokens",
               runner(GRADIENT, discrete=True), reading="UnlearnDiffAtk over the whole vocabulary", reactivation=True, main=True, order=0),
    AttackSpec("softprompt", "k free prefix embeddings", runner(GRADIENT, discrete=False), order=1),
    AttackSpec("inversion", "one learned word in place of the concept's words", runner(GRADIENT, discrete=False, inversion=True),
               order=2),
    AttackSpec("unlearndiff-heldout", "unlearndiff searching only the tokens of the concept's held-out route words",
               runner(GRADIENT, discrete=True, heldout=True), routes=True,
               reading="UnlearnDiffAtk restricted to held-out route tokens", order=7),
)  # fmt: skip
