"""Ring-A-Bell: a genetic search over k real tokens towards the concept's direction in the text
encoder's space; no gradients."""

from __future__ import annotations

from . import AttackSpec, runner

RINGABELL = "workbench.attacks.runners:ringabell"
SPECS = (
    AttackSpec("ringabell", "a genetic search over k real tokens towards the concept's text direction, no gradients",
               runner(RINGABELL), budget=50, unit="generations", reading="Ring-A-Bell over the whole vocabulary", order=3),
    AttackSpec("ringabell-heldout", "ringabell searching only the tokens of the concept's held-out route words",
               runner(RINGABELL, heldout=True), budget=50, unit="generations", routes=True,
               reading="Ring-A-Bell restricted to held-out route tokens", order=8),
)  # fmt: skip
