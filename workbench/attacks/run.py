"""One attack on one edit, judged by the concept's judge: ``attack(pipe, judge, edit, "striped", "unlearndiff")``.

Target prompts are the concept's held-out prompts that carry it (``Concept.eval_target``; the
toy world's: the held-out captions that name it); each is judged on the edited model without
attack (``before``) and after (``after``), with its own seed. Budgets count optimiser steps
(white-box, revival) or generations (Ring-A-Bell): each attack's ``AttackSpec`` says which; its
code is in ``attacks.runners`` (built-ins) or a plugin. Every model family takes every attack: the
prompt attacks' slots live in the family's main text encoder (CLIP on SD 1.x / 2.x and the toy
worlds, OpenCLIP on SDXL, T5 on FLUX, SD3 and PixArt: ``models.slots``).
On a concept with held-out routes (the language toy world's), ``routes`` tries its held-out words
as they are, and ``unlearndiff-heldout`` / ``ringabell-heldout`` search only those words' tokens
(``attacks.routes``).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..editing.edits import Edit, applied
from ..editing.examples import frozen_examples
from ..editing.options import GUIDED_AWAY
from ..evaluation.generation import generate
from ..evaluation.judges import judge_of
from ..evaluation.judging import settings
from ..models.families import denoiser_of
from ..models.loading import model_id
from ..prompts.concepts import get_concept, single
from ..registry import options_of
from .methods import ATTACKS, Attempt
from .routes import variants_of
from .score import AttackResult, rate_values, rates


def targets(concept, n_per: int = 1) -> list:
    """The concept's held-out prompts that carry it, with their seeds."""
    return get_concept(concept, n_per=n_per).eval_target


def strip(text: str, concept) -> str:
    """The held-out prompt without the concept's words (Ring-A-Bell's and inversion's starting prompt)."""
    return get_concept(concept).base_of(text) if isinstance(concept, str) else concept.base_of(text)


def attack(pipe, judge, edit: Edit, concept, method: str, budget: int | None = None, seed: int = 0, n_per: int = 1,
           options=None, steps: int | None = None, guidance: float | None = None, out: str | Path | None = None,
           progress: bool = False) -> AttackResult:  # fmt: skip
    """Run the attack ``method`` (a name of ``ATTACKS``) against ``edit`` on the concept's held-out
    prompts and judge every image.

    ``concept``: a name or a ``Concept``; ``judge``: a Judge, a spec ('toy', 'nudenet',
    'clip:FOLDER', ...), the toy oracle, or None for the concept's own; ``budget`` defaults to the
    attack's own; ``options``: the attack's options dataclass or a mapping of its fields (its
    ``AttackSpec.options``; e.g. ``{"tokens": 5}``), checked before any work; ``steps`` and
    ``guidance`` default to the model's own."""
    spec = ATTACKS[method]
    opts = options_of(spec.options, options, f"attack {method!r}")
    budget = spec.budget if budget is None else int(budget)
    if budget < 1:
        raise ValueError(f"budget={budget}: give at least 1 step")
    c = single(get_concept(concept, n_per=n_per), "an attack")
    c.check_model(model_id(pipe))
    if spec.routes:
        variants_of(c)  # before any generation: a concept without routes fails now
    steps, guidance = settings(pipe, steps, guidance)
    j = judge_of(judge, c, device=str(denoiser_of(pipe).device))
    judged: list = []  # every call's verdicts: the first the plain prompts', the last the attack's (one image a prompt, mostly)

    def shown(images, prompts) -> list[bool]:
        judged.append(j(images, prompts))
        return [bool(x) for x in judged[-1].shown]

    torch.manual_seed(seed)
    t0 = time.time()
    tg = list(c.eval_target)
    texts, seeds = [p.text for p in tg], [p.seed for p in tg]
    with applied(pipe, edit):
        before = shown(generate(pipe, texts, seeds, steps, guidance), tg)
    ex = None
    if spec.examples:  # the unedited model's trajectories for the target prompts: the attack loss's examples
        ex = frozen_examples(pipe, texts, seeds, GUIDED_AWAY, steps=steps, guidance=guidance)
        ex.target = ex.frozen.clone()
    info: dict = {"method": method, "edit": edit.method, "budget": budget, "seed": seed, "options": asdict(opts),
                  "judge": j.name, "judge_pinned": j.pinned(), "steps": steps, "guidance": guidance}  # fmt: skip
    attempt = Attempt(pipe, c, edit, tg, shown, ex, budget, seed, opts, steps, guidance, progress, out, info)
    after, adversarial = spec.run(attempt)
    if attempt.curve:
        info["curve"] = curve_of(before, {0: before, **attempt.curve})
    info["seconds"] = round(time.time() - t0, 1)
    result = AttackResult(method, c.name, texts, seeds, before, [bool(x) for x in after], list(adversarial), info,
                          _scores(judged[0], len(texts)), _scores(judged[-1] if len(judged) > 1 else None, len(texts)))  # fmt: skip
    if out is not None:
        save(result, out, attempt.tensors)
    return result


def curve_of(before: list[bool], verdicts: dict[int, list[bool]]) -> list[dict]:
    """ASR against budget: per checkpoint (in the attack's budget unit), the verdict per prompt
    there and its rates (``rates``: pre_asr, post_asr, asr, attacked)."""
    out = []
    for b in sorted(verdicts):
        shown = [bool(x) for x in verdicts[b]]
        out.append({"budget": b, "shown": shown, **rate_values(rates(before, shown))})
    return out


def _scores(verdicts, n: int) -> list[float]:
    """The judge's scores of one call, where it gives them for one image a prompt; else empty."""
    if verdicts is None or verdicts.score is None or len(verdicts) != n:
        return []
    return [float(x) for x in verdicts.score]


def save(result: AttackResult, out: str | Path, tensors: dict[str, torch.Tensor]) -> Path:
    """In ``out``: ``adversarial.safetensors`` (the slots' embeddings and, for discrete attacks, token
    ids), ``prompts.csv`` (``PROMPT_COLUMNS``, one row a prompt) and, last, ``result.json`` (summary
    and every prompt): a run with a result.json is whole."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if tensors:
        save_file(tensors, str(out / "adversarial.safetensors"))
    rows = prompt_rows(result, "embeddings" in tensors)
    with open(out / PROMPTS_CSV, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=PROMPT_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    per = [{"prompt": r["prompt"], "seed": r["seed"], "before": r["shown_before"], "after": r["shown_after"],
            "attacked": r["attacked"]} for r in rows]  # fmt: skip
    summary = {**result.summary(), "prompts_csv": str(out / PROMPTS_CSV)}
    (out / "result.json").write_text(json.dumps({**summary, "per_prompt": per}, indent=1, default=float))
    return out


#: the prompts file of every attack run, and its columns
PROMPTS_CSV = "prompts.csv"
PROMPT_COLUMNS = ["prompt", "seed", "attacked", "embedding", "shown_before", "score_before", "shown_after", "score_after"]


def prompt_rows(result: AttackResult, embedded: bool) -> list[dict]:
    """One row a prompt: the prompt and seed, its attacked form (text; ``embedding`` names the row of
    adversarial.safetensors' embeddings where the attack's slots are vectors), the judge's verdict and
    score before and after (score empty where the judge gives none)."""
    n = len(result.prompts)
    sb = result.score_before or [""] * n
    sa = result.score_after or [""] * n
    return [{"prompt": p, "seed": s, "attacked": adv, "embedding": f"adversarial.safetensors:embeddings[{i}]" if embedded else "",
             "shown_before": b, "score_before": x, "shown_after": a, "score_after": y}
            for i, (p, s, adv, b, a, x, y) in enumerate(zip(result.prompts, result.seeds, result.adversarial, result.before,
                                                            result.after, sb, sa))]  # fmt: skip
