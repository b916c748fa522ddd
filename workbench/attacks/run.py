"""One attack on one edit, judged by the concept's judge: ``attack(pipe, judge, edit, "striped", "unlearndiff")``.

Target prompts are the concept's held-out prompts that carry it (``Concept.eval_target``; the
toy world's: the held-out captions that name it); each is judged on the edited model without
attack (``before``) and after (``after``), with its own seed. Budgets count optimiser steps
(white-box, revival) or generations (Ring-A-Bell). Any SD-family model with one text encoder
(SD 1.x, 2.x, the toy world) takes prompt attacks; weight revival works on SDXL too.
On a concept with held-out routes (the language toy world's), ``routes`` tries its held-out words
as they are, and ``unlearndiff-heldout`` / ``ringabell-heldout`` search only those words' tokens
(``attacks.routes``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..editing.edits import Edit, applied
from ..editing.erase import frozen_examples
from ..evaluation.generation import generate
from ..evaluation.judges import judge_of
from ..evaluation.judging import settings
from ..models.loading import model_id
from ..models.slots import injecting, placeholder
from ..prompts.concepts import get_concept
from .prompt_search import concept_direction, gradient_attack, ringabell
from .revival import revive
from .routes import heldout_tokens, route_attack, uses_routes, variants_of
from .score import AttackResult

ATTACKS = ("unlearndiff", "softprompt", "inversion", "ringabell", "revival", "benign", "routes", "unlearndiff-heldout",
           "ringabell-heldout")  # fmt: skip
#: default budget per attack: optimiser steps, Ring-A-Bell generations, or routes tried per prompt
BUDGETS = {"unlearndiff": 100, "softprompt": 100, "inversion": 100, "ringabell": 50, "revival": 100, "benign": 100,
           "routes": 16, "unlearndiff-heldout": 100, "ringabell-heldout": 50}  # fmt: skip


def targets(concept, n_per: int = 1) -> list:
    """The concept's held-out prompts that carry it, with their seeds."""
    return get_concept(concept, n_per=n_per).eval_target


def strip(text: str, concept) -> str:
    """The held-out prompt without the concept's words (Ring-A-Bell's and inversion's starting prompt)."""
    return get_concept(concept).base_of(text) if isinstance(concept, str) else concept.base_of(text)


def attack(pipe, judge, edit: Edit, concept, method: str, budget: int | None = None, seed: int = 0, n_per: int = 1,
           k: int = 3, steps: int | None = None, guidance: float | None = None, out: str | Path | None = None,
           progress: bool = False) -> AttackResult:  # fmt: skip
    """Run ``method`` against ``edit`` on the concept's held-out prompts and judge every image.

    ``concept``: a name or a ``Concept``; ``judge``: a Judge, a spec ('toy', 'nudenet',
    'clip:FOLDER', ...), the toy oracle, or None for the concept's own; ``steps`` and ``guidance``
    default to the model's own."""
    if method not in ATTACKS:
        raise ValueError(f"unknown attack {method!r}: use one of {ATTACKS}")
    budget = BUDGETS[method] if budget is None else int(budget)
    if budget < 1:
        raise ValueError(f"budget={budget}: give at least 1 step")
    c = get_concept(concept, n_per=n_per)
    c.check_model(model_id(pipe))
    if method not in ("revival", "benign") and getattr(pipe, "text_encoder_2", None) is not None:
        raise ValueError(
            f"prompt attacks ({method}) cover models with one text encoder (SD 1.x, 2.x, the toy world); this model has two "
            "(SDXL): attack its weights with --attack revival or benign"
        )
    if uses_routes(method):
        variants_of(c)  # before any generation: a concept without routes fails now
    steps, guidance = settings(pipe, steps, guidance)
    j = judge_of(judge, c, device=str(pipe.unet.device))

    def shown(images, prompts) -> list[bool]:
        return [bool(x) for x in j(images, prompts).shown]

    torch.manual_seed(seed)
    t0 = time.time()
    tg = c.eval_target
    texts, seeds = [p.text for p in tg], [p.seed for p in tg]
    with applied(pipe, edit):
        before = shown(generate(pipe, texts, seeds, steps, guidance), tg)
    # the unedited model's trajectories for the target prompts: the attack loss's examples (the route attack needs none)
    ex = frozen_examples(pipe, texts, seeds, "esd", steps=steps, guidance=guidance) if method != "routes" else None
    if ex is not None:
        ex.target = ex.frozen.clone()
    info: dict = {"method": method, "edit": edit.method, "budget": budget, "seed": seed, "k": k, "judge": j.name,
                  "steps": steps, "guidance": guidance}  # fmt: skip
    adversarial: list[str]
    saved: dict[str, torch.Tensor] = {}
    if method in ("revival", "benign"):
        if method == "benign":
            others = c.eval_other[: len(tg)]
            ex = frozen_examples(pipe, [p.text for p in others], [p.seed for p in others], "esd", steps=steps, guidance=guidance)
            ex.target = ex.frozen.clone()
        revived, trace = revive(pipe, edit, ex, iterations=budget, seed=seed, benign=method == "benign", progress=progress)
        with applied(pipe, revived, check=False):
            after = shown(generate(pipe, texts, seeds, steps, guidance), tg)
        info.update(loss_first=trace[0], loss_last=trace[-1])
        adversarial = texts
        if out is not None:
            revived.save(Path(out) / "revived")
    elif method == "routes":
        with applied(pipe, edit):
            after, adversarial, per_route = route_attack(pipe, c, shown, seeds, steps, guidance, budget)
        info.update(per_route=per_route, routes=len(per_route))
    else:
        word, tid = placeholder(pipe, texts)
        base, _, vocab = method.partition("-")
        allowed = heldout_tokens(pipe, c) if vocab == "heldout" else None
        if allowed is not None:
            info["vocabulary"] = pipe.tokenizer.convert_ids_to_tokens(allowed.tolist())
        with applied(pipe, edit):
            if base == "ringabell":
                direction = concept_direction(pipe, [p.text for p in c.target], [p.text for p in c.anchor])
                res = ringabell(pipe, texts, list(c.bases), direction, word, tid, k=k, generations=budget,
                                seed=seed, ex=ex, progress=progress, allowed=allowed)  # fmt: skip
            else:
                res = gradient_attack(pipe, ex, texts, word, tid, k=1 if method == "inversion" else k,
                                      discrete=base == "unlearndiff", iterations=budget, seed=seed, progress=progress,
                                      bases=list(c.bases) if method == "inversion" else None,
                                      shared=method == "inversion", allowed=allowed)  # fmt: skip
            with injecting(pipe, tid, res.vectors):
                after = shown(generate(pipe, res.texts, seeds, steps, guidance), tg)
        info.update(loss_before=res.loss_before, loss_start=res.loss_start, loss_after=res.loss_after, slot_texts=res.texts,
                    token_id=tid)  # fmt: skip
        if res.token_ids is not None:
            adversarial = [_with_tokens(pipe, t, word, ids) for t, ids in zip(res.texts, res.token_ids)]
            saved["token_ids"] = res.token_ids.contiguous()
        else:
            adversarial = [t.replace(word, "<emb>") for t in res.texts]
        saved["embeddings"] = res.vectors.contiguous()
    info["seconds"] = round(time.time() - t0, 1)
    result = AttackResult(method, c.name, texts, seeds, before, after, adversarial, info)
    if out is not None:
        save(result, out, saved)
    return result


def _with_tokens(pipe, text: str, word: str, ids: torch.Tensor) -> str:
    """The attacked prompt as text: each placeholder word (a whole word, never part of another)
    replaced by its chosen token."""
    chosen = iter(pipe.tokenizer.convert_ids_to_tokens(i).replace("</w>", "") for i in ids.tolist())
    return " ".join(next(chosen) if w == word else w for w in text.split(" "))


def save(result: AttackResult, out: str | Path, tensors: dict[str, torch.Tensor]) -> Path:
    """``result.json`` (summary and every prompt) and ``adversarial.safetensors`` (the slots' embeddings
    and, for discrete attacks, token ids) in ``out``."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if tensors:
        save_file(tensors, str(out / "adversarial.safetensors"))
    rows = [{"prompt": p, "seed": s, "before": b, "after": a, "attacked": adv}
            for p, s, b, a, adv in zip(result.prompts, result.seeds, result.before, result.after, result.adversarial)]  # fmt: skip
    (out / "result.json").write_text(json.dumps({**result.summary(), "per_prompt": rows}, indent=1, default=float))
    return out
