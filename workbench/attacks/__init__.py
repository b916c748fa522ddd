"""Attacks on edited models: adversarial prompts (discrete, soft, inverted, black-box) and weight
revival, each judged by the oracle as attack success rates with Wilson intervals."""

from ..models.slots import encode, injecting, placeholder, with_slots
from .prompt_search import AttackOutcome, attack_loss, concept_direction, gradient_attack, ringabell
from .revival import revive
from .routes import heldout_tokens, route_attack
from .run import ATTACKS, BUDGETS, attack, save, strip, targets
from .score import AttackResult, Rate, shown, wilson

__all__ = ["ATTACKS", "BUDGETS", "AttackOutcome", "AttackResult", "Rate", "attack", "attack_loss", "concept_direction", "encode",
           "gradient_attack", "heldout_tokens", "injecting", "placeholder", "revive", "ringabell", "route_attack", "save", "shown", "strip", "targets", "wilson",
           "with_slots"]  # fmt: skip
