"""Weight attacks: fine-tune only the weights the edit changed (pruned entries from zero) on the
concept (revival), or on unrelated prompts (benign: the control). Any model, SDXL included."""

from __future__ import annotations

from dataclasses import dataclass

from ...editing.options import option
from . import AttackSpec, runner

WEIGHTS = "workbench.attacks.runners:weights"


@dataclass(frozen=True)
class RevivalOptions:
    """Adam over the edit's tensors: its learning rate and trajectories a step."""

    lr: float = option(1e-3, "the weight attack's Adam learning rate")
    batch: int = option(16, "trajectories a step of the weight attack")

    def __post_init__(self):
        if self.lr <= 0 or self.batch < 1:
            raise ValueError(f"a weight attack needs lr > 0 and batch >= 1 (got {self})")


SPECS = (
    AttackSpec("revival", "fine-tune only the weights the edit changed (pruned entries from zero) on the concept",
               runner(WEIGHTS), RevivalOptions, changes="weights", order=4),
    AttackSpec("benign", "fine-tune the same weights on unrelated prompts (revival's control)", runner(WEIGHTS, benign=True),
               RevivalOptions, changes="weights", order=5),
)  # fmt: skip
