"""Weight attacks: fine-tune only the weights the edit changed (pruned entries from zero) on the
concept (revival), or on unrelated prompts (benign: the control). Any model, SDXL included."""

from __future__ import annotations

from . import AttackSpec, runner

WEIGHTS = "workbench.attacks.runners:weights"
SPECS = (
    AttackSpec("revival", "fine-tune only the weights the edit changed (pruned entries from zero) on the concept",
               runner(WEIGHTS), changes="weights", order=4),
    AttackSpec("benign", "fine-tune the same weights on unrelated prompts (revival's control)", runner(WEIGHTS, benign=True),
               changes="weights", order=5),
)  # fmt: skip
