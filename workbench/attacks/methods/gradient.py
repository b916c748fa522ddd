"""White-box prompt attacks by gradient: UnlearnDiffAtk-style discrete tokens, soft prompts, and
textual inversion, each on the erasing loss of the unedited model's trajectories."""

from __future__ import annotations

from dataclasses import dataclass

from ...editing.options import option
from . import AttackSpec, runner

GRADIENT = "workbench.attacks.runners:gradient"
#: where the adversarial slots go in the prompt (UnlearnDiffAtk: a prefix)
WHERE = ("suffix", "prefix")


@dataclass(frozen=True)
class InversionOptions:
    """Adam over the learned vectors: its learning rate and target images a step."""

    lr: float | None = option(None, "Adam's learning rate (gradient attacks' None: 0.5 over token logits, 0.01 over "
                              "free embeddings)")  # fmt: skip
    batch: int = option(16, "examples an optimiser step (target trajectories; relearn: concept images)")

    def __post_init__(self):
        if (self.lr is not None and self.lr <= 0) or self.batch < 1:
            raise ValueError(f"a gradient attack needs lr > 0 and batch >= 1 (got {self})")


@dataclass(frozen=True)
class TokenOptions(InversionOptions):
    """Adam's settings, the adversarial tokens a prompt and where they go."""

    tokens: int = option(3, "adversarial tokens per prompt (k)")
    where: str = option("suffix", "where the tokens go: after the prompt (a causal text encoder keeps the prompt's own "
                        "states) or before it, as UnlearnDiffAtk places them", WHERE)  # fmt: skip

    def __post_init__(self):
        super().__post_init__()
        if self.tokens < 1:
            raise ValueError(f"tokens={self.tokens}: an attack needs at least 1 adversarial token")


UNLEARNDIFF, SOFTPROMPT, INVERSION, HELDOUT_TOKENS = SPECS = (
    AttackSpec("unlearndiff", "k adversarial prefix tokens: a softmax relaxation over the vocabulary projected to real tokens",
               runner(GRADIENT, discrete=True), TokenOptions, reading="UnlearnDiffAtk over the whole vocabulary",
               reactivation=True, main=True, order=0),
    AttackSpec("softprompt", "k free prefix embeddings", runner(GRADIENT, discrete=False), TokenOptions, order=1),
    AttackSpec("inversion", "one learned word in place of the concept's words", runner(GRADIENT, discrete=False, inversion=True),
               InversionOptions, order=2),
    AttackSpec("unlearndiff-heldout", "unlearndiff searching only the tokens of the concept's held-out route words",
               runner(GRADIENT, discrete=True, heldout=True), TokenOptions, routes=True,
               reading="UnlearnDiffAtk restricted to held-out route tokens", order=7),
)  # fmt: skip
