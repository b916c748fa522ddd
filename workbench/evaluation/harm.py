"""The one harm function: what an edit costs beyond the concept it erases.

``harm(before, after)`` compares two readings (``Reading.summary()``: the keys of ``demo --json``)
of the same held-out prompts. ``worst`` is the largest drop in accuracy over every attribute the
judge reads on the prompts *without* the concept, the erased concept's own attribute included
(erasing 'striped' must not lose the dotted and checkered prompts' texture); ``degraded`` is the
rise in the share of degraded images, a criterion of its own; ``utility`` the change of each
image-quality figure (toy FID, CLIP score). Every page and command reads harm through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: the harm budget the attack table matches erasers at (points of the worst drop)
BUDGET = 0.10
#: the clean side's line (issue 5's acceptance: every other attribute within 5 points): each eraser's
#: best point on a robustness page and the MET verdicts of docs/results.md
ACCEPT = 0.05


@dataclass(frozen=True)
class Harm:
    worst: float  # largest accuracy drop on the other prompts (nan when the judge reads no attribute)
    attribute: str | None  # which attribute dropped most
    degraded: float  # rise in the share of degraded images (nan when the judge cannot tell)
    utility: dict[str, float] = field(default_factory=dict)  # after - before, per image-quality figure
    drops: dict[str, float] = field(default_factory=dict)  # every attribute's drop

    def within(self, budget: float = BUDGET) -> bool:
        """Neither the worst drop nor the rise in degraded images exceeds ``budget`` (nan passes)."""
        return not (self.worst > budget or self.degraded > budget)

    @property
    def cost(self) -> float:
        """The larger of the worst drop and the degraded rise: the number an edit is matched on."""
        vals = [v for v in (self.worst, self.degraded) if not math.isnan(v)]
        return max(vals) if vals else float("nan")

    def summary(self) -> dict:
        return {"worst": self.worst, "attribute": self.attribute, "degraded": self.degraded, "utility": self.utility,
                "drops": self.drops}  # fmt: skip


def harm(before: dict, after: dict) -> Harm:
    """The harm of going from reading ``before`` to ``after`` (module docstring)."""
    b, a = before.get("other_accuracy", {}), after.get("other_accuracy", {})
    drops = {k: b[k] - a[k] for k in b if k in a}
    attribute = max(drops, key=drops.get) if drops else None
    worst = drops[attribute] if drops else float("nan")
    deg = after.get("degraded_rate", float("nan")) - before.get("degraded_rate", float("nan"))
    keys = [k for k in ("fid", "clip_score") if k in before and k in after]
    return Harm(worst, attribute, float(deg), {k: after[k] - before[k] for k in keys}, drops)
