"""Ring-A-Bell: a genetic search over k real tokens towards the concept's direction in the text
encoder's space; no gradients."""

from __future__ import annotations

from dataclasses import dataclass

from ...editing.options import option
from . import AttackSpec, runner

RINGABELL = "workbench.attacks.runners:ringabell"


@dataclass(frozen=True)
class RingabellOptions:
    """The genetic search: tokens a prompt, the concept direction's weight, population, mutation rate."""

    tokens: int = option(3, "adversarial tokens per prompt (k)")
    eta: float = option(3.0, "Ring-A-Bell: the concept direction's weight in the search's target encoding")
    population: int = option(32, "Ring-A-Bell: candidate token sets a generation")
    mutation: float = option(0.2, "Ring-A-Bell: the chance a token mutates")

    def __post_init__(self):
        if self.tokens < 1 or self.population < 2 or not 0 <= self.mutation <= 1:
            raise ValueError(f"Ring-A-Bell needs tokens >= 1, population >= 2 and mutation in [0, 1] (got {self})")


SPECS = (
    AttackSpec("ringabell", "a genetic search over k real tokens towards the concept's text direction, no gradients",
               runner(RINGABELL), RingabellOptions, budget=50, unit="generations",
               reading="Ring-A-Bell over the whole vocabulary", order=3),
    AttackSpec("ringabell-heldout", "ringabell searching only the tokens of the concept's held-out route words",
               runner(RINGABELL, heldout=True), RingabellOptions, budget=50, unit="generations", routes=True,
               reading="Ring-A-Bell restricted to held-out route tokens", order=8),
)  # fmt: skip
