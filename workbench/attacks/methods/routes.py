"""The route attack: each held-out target prompt under every held-out route of the concept
(synonyms, implied objects, descriptions) as it is; black-box, no search."""

from __future__ import annotations

from . import AttackSpec, runner

SPEC = AttackSpec("routes", "each held-out synonym and description of the concept as it is (concepts with routes)",
                  runner("workbench.attacks.runners:routes"), budget=16, unit="routes tried per prompt", examples=False,
                  routes=True, reading="the held-out routes as they are", order=6)  # fmt: skip
