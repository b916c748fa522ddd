"""The route attack and the held-out vocabulary (issue 24): other words that reach the concept.

The route attack is the black-box baseline any user tries first: each held-out target prompt
rewritten with every held-out route of the concept (its synonyms, implied objects and
descriptions: ``Concept.extra['routes']``, which the language toy world's concepts carry), each
generated with the prompt's own seed; a prompt is broken when any route's image shows the concept.
``heldout_tokens`` restricts a discrete attack (UnlearnDiffAtk, Ring-A-Bell) to the tokens of
those routes that no train route uses, so that what it finds cannot be the erased words themselves.
"""

from __future__ import annotations

import torch

from ..evaluation.generation import generate
from ..models.slots import slot_parts


def uses_routes(method: str) -> bool:
    """Does the attack ``method`` need the concept's held-out routes (its spec's ``routes``)?"""
    from .methods import ATTACKS

    return method in ATTACKS and ATTACKS[method].routes


def variants_of(concept) -> list[list[str]]:
    """Per held-out target prompt, the prompt under every held-out route; a clear error where the
    concept has no routes."""
    routes = concept.extra.get("routes")
    if not routes:
        raise ValueError(
            f"concept {concept.name!r} has no held-out routes: the route attack and the '-heldout' attacks need a concept "
            "whose other words are known (the language world's: lang:striped, lang:circle, ... with --model toy-lang)"
        )
    return routes


def heldout_tokens(pipe, concept) -> torch.Tensor:
    """The token ids of the concept's held-out route words that no train route uses."""
    variants_of(concept)  # a concept without routes: the same error as the route attack's
    words = concept.extra.get("heldout_words") or []
    tok = slot_parts(pipe)[1]
    special = set(tok.all_special_ids)
    ids = sorted({i for w in words for i in tok(w, add_special_tokens=False).input_ids if i not in special})
    if not ids or tok.unk_token_id in ids:
        raise ValueError(f"this model's tokenizer does not know the held-out words {words}: use the model the concept is for")
    return torch.tensor(ids)


def route_attack(pipe, concept, shown, seeds: list[int], steps: int, guidance: float, budget: int) -> tuple:
    """(after, adversarial, per-route rates, tried): each target prompt tried under its first
    ``budget`` held-out routes; ``shown(images, texts)`` is the judge's verdicts; ``tried`` the
    verdict of each prompt's routes in turn."""
    variants = [v[:budget] for v in variants_of(concept)]
    flat = [t for v in variants for t in v]
    flat_seeds = [s for v, s in zip(variants, seeds) for _ in v]
    verdicts = shown(generate(pipe, flat, flat_seeds, steps, guidance), flat)
    after, adversarial, tried, i = [], [], [], 0
    per_route: dict[int, list[bool]] = {}
    for v in variants:
        got = verdicts[i : i + len(v)]
        i += len(v)
        tried.append(got)
        after.append(any(got))
        adversarial.append(v[got.index(True)] if any(got) else v[-1])
        for j, x in enumerate(got):
            per_route.setdefault(j, []).append(x)
    names = concept.extra.get("route_phrases") or [f"route {j}" for j in per_route]
    rates = {names[j]: sum(x) / len(x) for j, x in per_route.items()}
    return after, adversarial, rates, tried


def route_curve(tried: list[list[bool]], marks: list[int]) -> dict[int, list[bool]]:
    """The route attack's ASR-against-budget points from its verdicts (``tried``: each prompt's,
    route by route): at b routes a prompt counts once one of its first b showed the concept."""
    return {b: [any(got[:b]) for got in tried] for b in marks}
