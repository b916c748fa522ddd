"""The built-in attacks' code, one function per family, each ``(attempt, ...) -> (after,
adversarial)`` (``attacks.methods``): weight revival, the route attack, the gradient prompt
attacks and Ring-A-Bell. ``attacks.run.attack`` prepares the ``Attempt`` and keeps the result."""

from __future__ import annotations

from pathlib import Path

import torch

from ..editing.edits import applied
from ..editing.examples import frozen_examples
from ..editing.options import GUIDED_AWAY
from ..evaluation.generation import generate
from ..models.slots import injecting, placeholder, slot_parts
from .methods import Attempt
from .prompt_search import concept_direction, gradient_attack
from .prompt_search import ringabell as genetic
from .revival import revive
from .routes import heldout_tokens, route_attack, route_curve
from .score import checkpoints


def weights(a: Attempt, benign: bool = False) -> tuple[list[bool], list[str]]:
    """Revival (or its benign control on unrelated prompts): fine-tune what the edit changed."""
    ex = a.examples
    if benign:
        others = a.concept.eval_other[: len(a.targets)]
        ex = frozen_examples(a.pipe, [p.text for p in others], [p.seed for p in others], GUIDED_AWAY, steps=a.steps,
                             guidance=a.guidance)  # fmt: skip
        ex.target = ex.frozen.clone()
    o = a.options

    def judged(edit) -> list[bool]:
        with applied(a.pipe, edit, check=False):
            return a.shown(generate(a.pipe, a.texts, a.seeds, a.steps, a.guidance), a.targets)

    def at(done: int, edit) -> None:
        a.curve[done] = judged(edit)

    revived, trace = revive(a.pipe, a.edit, ex, iterations=a.budget, lr=o.lr, seed=a.seed, batch=o.batch, benign=benign,
                           progress=a.progress, checkpoints=tuple(checkpoints(a.budget)), at=at)  # fmt: skip
    after = judged(revived)
    if a.curve:
        a.curve[a.budget] = after
    a.info.update(loss_first=trace[0], loss_last=trace[-1])
    if a.out is not None:
        revived.save(Path(a.out) / "revived")
    return after, a.texts


def routes(a: Attempt) -> tuple[list[bool], list[str]]:
    """Every held-out route of the concept, as it is."""
    with applied(a.pipe, a.edit):
        after, adversarial, per_route, tried = route_attack(a.pipe, a.concept, a.shown, a.seeds, a.steps, a.guidance,
                                                            a.budget)  # fmt: skip
    a.info.update(per_route=per_route, routes=len(per_route))
    a.curve.update(route_curve(tried, checkpoints(a.budget)))  # from the same images, none generated again
    return after, adversarial


def gradient(a: Attempt, discrete: bool, inversion: bool = False, heldout: bool = False) -> tuple[list[bool], list[str]]:
    """UnlearnDiffAtk-style tokens (``discrete``), soft prompts, or one inverted word (``inversion``)."""
    word, tid, allowed = _slot(a, heldout)
    bases = list(a.concept.bases) if inversion else None
    o = a.options
    k, where = (1, "suffix") if inversion else (o.tokens, o.where)
    with applied(a.pipe, a.edit):
        res = gradient_attack(a.pipe, a.examples, a.texts, word, tid, k=k, discrete=discrete, iterations=a.budget, lr=o.lr,
                              seed=a.seed, batch=o.batch, bases=bases, shared=inversion, where=where, progress=a.progress,
                              allowed=allowed, checkpoints=tuple(checkpoints(a.budget)))  # fmt: skip
        return _judged(a, res, word, tid)


def ringabell(a: Attempt, heldout: bool = False) -> tuple[list[bool], list[str]]:
    """Ring-A-Bell's genetic search towards the concept's text direction."""
    word, tid, allowed = _slot(a, heldout)
    c = a.concept
    with applied(a.pipe, a.edit):
        direction = concept_direction(a.pipe, [p.text for p in c.target], [p.text for p in c.anchor])
        o = a.options
        res = genetic(a.pipe, a.texts, list(c.bases), direction, word, tid, k=o.tokens, eta=o.eta, generations=a.budget,
                      population=o.population, mutation=o.mutation, seed=a.seed, ex=a.examples, progress=a.progress,
                      allowed=allowed, checkpoints=tuple(checkpoints(a.budget)))  # fmt: skip
        return _judged(a, res, word, tid)


def _slot(a: Attempt, heldout: bool):
    """The placeholder word and its token id, and the allowed tokens (held-out route words only)."""
    word, tid = placeholder(a.pipe, a.texts)
    allowed = heldout_tokens(a.pipe, a.concept) if heldout else None
    if allowed is not None:
        a.info["vocabulary"] = slot_parts(a.pipe)[1].convert_ids_to_tokens(allowed.tolist())
    return word, tid, allowed


def _judged(a: Attempt, res, word: str, tid: int) -> tuple[list[bool], list[str]]:
    """The attacked prompts generated and judged (inside the edit), with what the search kept; where
    it kept snapshots at budget checkpoints, each judged too (``a.curve``), before the final images."""
    for b, (vectors, _) in sorted(res.snapshots.items()):
        with injecting(a.pipe, tid, vectors):
            a.curve[b] = a.shown(generate(a.pipe, res.texts, a.seeds, a.steps, a.guidance), a.targets)
    with injecting(a.pipe, tid, res.vectors):
        after = a.shown(generate(a.pipe, res.texts, a.seeds, a.steps, a.guidance), a.targets)
    a.info.update(loss_before=res.loss_before, loss_start=res.loss_start, loss_after=res.loss_after, slot_texts=res.texts,
                  token_id=tid)  # fmt: skip
    if res.token_ids is not None:
        adversarial = [_with_tokens(a.pipe, t, word, ids) for t, ids in zip(res.texts, res.token_ids)]
        a.tensors["token_ids"] = res.token_ids.contiguous()
    else:
        adversarial = [t.replace(word, "<emb>") for t in res.texts]
    a.tensors["embeddings"] = res.vectors.contiguous()
    if a.curve:
        a.curve[a.budget] = after
    return after, adversarial


def _word(tok, i: int) -> str:
    """A token as text: CLIP's word-end mark and T5's word-start mark removed."""
    return tok.convert_ids_to_tokens(i).replace("</w>", "").replace("\u2581", "").strip()


def _with_tokens(pipe, text: str, word: str, ids: torch.Tensor) -> str:
    """The attacked prompt as text: each placeholder word (a whole word, never part of another)
    replaced by its chosen token."""
    tok = slot_parts(pipe)[1]
    chosen = iter(_word(tok, i) for i in ids.tolist())
    return " ".join(next(chosen) if w == word else w for w in text.split(" "))
