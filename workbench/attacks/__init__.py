"""Attacks on edited models: adversarial prompts (discrete, soft, inverted, black-box) and weight
revival, each judged by the concept's judge as attack success rates with Wilson intervals. The
attacks are registered by name (``ATTACKS``: one spec per attack in ``attacks/methods``, plugins
through entry points); names load on first use, so the CLI reads the registry without torch."""

from .._lazy import lazy

_EXPORTS = {
    **{n: ("..models.slots", n) for n in ("encode", "injecting", "placeholder", "with_slots")},
    **{n: (".prompt_search", n) for n in ("AttackOutcome", "attack_loss", "concept_direction", "gradient_attack", "ringabell")},
    "revive": (".revival", "revive"),
    **{n: (".routes", n) for n in ("heldout_tokens", "route_attack")},
    **{n: (".run", n) for n in ("attack", "save", "strip", "targets")},
    **{n: (".methods", n) for n in ("ATTACKS", "AttackSpec", "Attempt")},
    **{n: (".score", n) for n in ("AttackResult", "Rate", "rates", "read_result", "shown", "wilson")},
}
__getattr__, __dir__ = lazy(__name__, globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
