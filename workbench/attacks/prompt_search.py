"""Prompt attacks on an edited model: UnlearnDiffAtk-style discrete tokens, a soft prompt, and a
Ring-A-Bell-style black-box token search.

The white-box attacks minimise the *attack loss*: the edited model's noise prediction for the
attacked prompt against the unedited model's prediction for the plain target prompt, at the
unedited model's own x_t along its sampling trajectory for that prompt (every UNet call, one
example each; ``editing.learning.frozen_examples``). This is a deterministic stand-in for
UnlearnDiffAtk's denoising loss on images of the concept made by the unedited model: both are
lowest when the edited model, given the attacked prompt, denoises towards the concept's images.
``AttackOutcome.loss_before`` is the loss of the plain target prompt, ``loss_after`` the
attacked one's (a lower loss is a stronger attack).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from ..editing.learning import Examples
from ..editing.training import batches, optimise, predicted, prediction_loss, trainable
from ..models.slots import encode, injecting, real_tokens, token_table, with_slots


@dataclass
class AttackOutcome:
    texts: list[str]  # prompts with placeholder slots
    vectors: torch.Tensor  # (N, K, D) what the slots hold at the end
    token_ids: torch.Tensor | None  # (N, K) real tokens (discrete attacks), else None
    loss_before: float  # the plain target prompt's attack loss
    loss_after: float  # the attacked prompt's
    trace: list[float]  # attack loss per iteration (Ring-A-Bell: best fitness per generation)
    loss_start: float = float("nan")  # the attack's own starting prompt's (its initial slots)
    #: budget checkpoint -> (vectors, token ids or None) the attack would have ended with there
    snapshots: dict = field(default_factory=dict)


def attack_loss(pipe, ex: Examples, texts: list[str], token_id: int | None, vectors: torch.Tensor | None,
                idx: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Mean squared error of the edited model's prediction for the (attacked) prompts of examples
    ``idx`` against the unedited model's prediction for the plain prompt; example i is prompt i % N."""
    n = len(texts)
    p = (idx % n).tolist()
    ctx = injecting(pipe, token_id, vectors[p]) if vectors is not None else contextlib.nullcontext()
    with ctx:
        cond = encode(pipe, [texts[i] for i in p])
    return prediction_loss(pipe, ex, idx, target="frozen", cond=cond)


@torch.no_grad()
def mean_loss(pipe, ex: Examples, texts, token_id=None, vectors=None, batch: int = 64, every: int = 4) -> float:
    """The attack loss over a fixed random quarter of the examples (``every``: 1 takes them all)."""
    chosen = torch.randperm(len(ex), generator=torch.Generator().manual_seed(0))[: max(1, len(ex) // every)].sort().values
    total = 0.0
    for lo in range(0, len(chosen), batch):
        idx = chosen[lo : lo + batch]
        total += float(attack_loss(pipe, ex, texts, token_id, vectors, idx)) * len(idx)
    return total / len(chosen)


def gradient_attack(pipe, ex: Examples, prompts: list[str], word: str, token_id: int, k: int = 3, discrete: bool = True,
                    iterations: int = 100, lr: float | None = None, seed: int = 0, batch: int = 16, bases: list[str] | None = None,
                    shared: bool = False, where: str = "suffix", progress: bool = False,
                    allowed: torch.Tensor | None = None, checkpoints: tuple[int, ...] = ()) -> AttackOutcome:  # fmt: skip
    """Optimise k slots per prompt, after it (``where="prefix"``: before it, as UnlearnDiffAtk
    places them; with a causal text encoder a suffix leaves the prompt's own token states as they
    were, a prefix shifts them all), or after each of ``bases``, the prompts with the concept's words
    removed; ``shared``: one set of slots for every prompt, as textual inversion learns one word. ``discrete``: logits over real tokens, relaxed by a softmax (the embedding
    is the softmax-weighted mix of vocabulary embeddings) and projected to the most likely token at
    the end (UnlearnDiffAtk's setting: the projected, real-token prompt is judged); else free
    embeddings (a soft prompt, or an inverted concept: no text reaches them). ``allowed``: the token
    ids a discrete attack may choose (default every real token). ``checkpoints``: iteration counts
    below ``iterations`` where the slots are kept as the attack would end there (projected and
    polished, for a discrete attack), in ``snapshots``: the ASR-against-budget curve's points."""
    texts = (
        [with_slots(p, word, k, where) for p in prompts] if bases is None else [with_slots(b, word, k, "suffix") for b in bases]
    )
    g = torch.Generator().manual_seed(seed)
    table = token_table(pipe).detach()
    allowed = real_tokens(pipe) if allowed is None else allowed
    n = len(prompts)
    rows = 1 if shared else n
    if discrete:
        logits = (0.01 * torch.randn(rows, k, len(allowed), generator=g)).requires_grad_(True)
        params, lr = [logits], 0.5 if lr is None else lr

        def vectors():
            return (torch.softmax(logits, -1) @ table[allowed]).expand(n, -1, -1)
    else:
        start = allowed[torch.randint(0, len(allowed), (rows, k), generator=g)]
        soft = table[start].clone().requires_grad_(True)
        params, lr = [soft], 1e-2 if lr is None else lr

        def vectors():
            return soft.expand(n, -1, -1)

    before = mean_loss(pipe, ex, prompts)
    with torch.no_grad():
        start_loss = mean_loss(pipe, ex, texts, token_id, vectors().detach())

    def step(it: int, idx: torch.Tensor):
        loss = attack_loss(pipe, ex, texts, token_id, vectors(), idx)
        return loss, float(loss.detach())

    @torch.no_grad()
    def ending():
        """(vectors, ids) of the slots as they stand, as the attack ends."""
        if discrete:
            ids = _polish(pipe, ex, texts, token_id, table, allowed, logits.detach(), n)
            return table[ids].clone(), ids
        return soft.detach().expand(n, -1, -1).clone(), None

    snapshots: dict = {}

    def keep(done: int) -> None:
        if done in checkpoints and done < iterations:
            snapshots[done] = ending()

    with trainable(pipe):  # the slots learn, the model does not
        trace = optimise(params, batches(len(ex), batch, iterations, seed), step, iterations, "attack", progress, lr=lr,
                         after=keep)  # fmt: skip
    final, ids = ending()
    with torch.no_grad():
        after = mean_loss(pipe, ex, texts, token_id, final)
    return AttackOutcome(texts, final, ids, before, after, trace, start_loss, snapshots)


@torch.no_grad()
def _per_prompt_loss(pipe, ex: Examples, texts, token_id, vectors, idx: torch.Tensor) -> torch.Tensor:
    """(N,) the attack loss of each prompt over its examples among ``idx``."""
    n = len(texts)
    p = (idx % n).tolist()
    with injecting(pipe, token_id, vectors[p]):
        cond = encode(pipe, [texts[i] for i in p])
    pred = predicted(pipe, ex, idx, cond=cond)
    err = (pred.float() - ex.frozen[idx].to(pred.device).float()).pow(2).flatten(1).mean(1).cpu()
    return torch.zeros(n).index_add_(0, idx % n, err) / torch.bincount(idx % n, minlength=n).clamp(min=1)


@torch.no_grad()
def _polish(pipe, ex, texts, token_id, table, allowed, logits, n, candidates: int = 6, calls: int = 3) -> torch.Tensor:
    """Project the relaxed slots to real tokens: start from each slot's most likely token, then for
    each slot in turn keep, per prompt, whichever of its ``candidates`` likeliest tokens gives the
    lowest attack loss on a few UNet calls of that prompt (a coordinate search, as GCG evaluates
    candidates); the projection alone can lose what the relaxation found."""
    rows, k, _ = logits.shape
    ids = allowed[logits.argmax(-1)].expand(n, -1).clone()
    steps = len(ex) // n
    idx = torch.cat([c * n + torch.arange(n) for c in torch.linspace(0, steps - 1, calls).long().tolist()])
    best = _per_prompt_loss(pipe, ex, texts, token_id, table[ids], idx)
    top = allowed[logits.topk(min(candidates, logits.shape[-1]), -1).indices].expand(n, -1, -1)  # (N, K, C)
    for j in range(k):
        for c in range(top.shape[-1]):
            trial = ids.clone()
            trial[:, j] = top[:, j, c]
            loss = _per_prompt_loss(pipe, ex, texts, token_id, table[trial], idx)
            better = loss < best
            if rows == 1:  # one shared word: the choice that helps the prompts on average
                better = torch.full_like(better, bool(loss.mean() < best.mean()))
            ids[better] = trial[better]
            best = torch.where(better, loss, best)
    return ids


@torch.no_grad()
def concept_direction(pipe, concept_prompts: list[str], reference_prompts: list[str]) -> torch.Tensor:
    """Ring-A-Bell's concept vector: the mean difference of the text encodings (L, D) of paired
    prompts with and without the concept."""
    return (encode(pipe, concept_prompts).context - encode(pipe, reference_prompts).context).mean(0)


@torch.no_grad()
def ringabell(pipe, prompts: list[str], bases: list[str], direction: torch.Tensor, word: str, token_id: int, k: int = 3,
              eta: float = 3.0, generations: int = 50, population: int = 32, mutation: float = 0.2, seed: int = 0,
              ex: Examples | None = None, progress: bool = False, allowed: torch.Tensor | None = None,
              checkpoints: tuple[int, ...] = ()) -> AttackOutcome:  # fmt: skip
    """A genetic search over k real tokens appended to each prompt's concept-free base, towards the
    text encoding ``encode(base) + eta * direction`` (cosine similarity of the flattened encodings);
    no gradient and no UNet call (Ring-A-Bell, Tsai et al. 2024). ``ex`` only reports the attack
    loss of the result beside the white-box attacks'; ``allowed``: the token ids it may choose;
    ``checkpoints``: generation counts below ``generations`` where the fittest tokens are kept as
    the search would end there (``snapshots``; the search itself is the same with or without)."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    table = token_table(pipe).detach()
    allowed = real_tokens(pipe) if allowed is None else allowed
    n = len(bases)
    texts = [with_slots(b, word, k, "suffix") for b in bases]
    target = (encode(pipe, bases).context + eta * direction[None]).flatten(1)  # (N, L*D)
    pop = allowed[torch.randint(0, len(allowed), (n, population, k), generator=g)]

    def fitness(pop):
        flat_texts = [t for t in texts for _ in range(population)]
        with injecting(pipe, token_id, table[pop.reshape(n * population, k)]):
            enc = encode(pipe, flat_texts).context.flatten(1)
        return nn.functional.cosine_similarity(enc, target.repeat_interleave(population, 0)).reshape(n, population)

    def fittest(pop, fit):
        best = pop[torch.arange(n), fit.argmax(1)]
        return table[best].clone(), best

    trace, snapshots = [], {}
    for gen in tqdm(range(generations), desc="ring-a-bell", disable=not progress):
        fit = fitness(pop)
        if gen in checkpoints:  # the population after gen generations: the search as it would have ended there
            snapshots[gen] = fittest(pop, fit)
        order = fit.argsort(dim=1, descending=True)
        pop = torch.gather(pop, 1, order[..., None].expand(-1, -1, k))
        trace.append(float(fit.max(1).values.mean()))
        half = population // 2
        parents = pop[:, :half]
        a = parents[:, torch.randint(0, half, (population - half,), generator=g)]
        b = parents[:, torch.randint(0, half, (population - half,), generator=g)]
        children = torch.where(torch.rand(a.shape, generator=g) < 0.5, a, b)
        mutate = torch.rand(children.shape, generator=g) < mutation
        children = torch.where(mutate, allowed[torch.randint(0, len(allowed), children.shape, generator=g)], children)
        pop = torch.cat([parents, children], dim=1)
    vec, best = fittest(pop, fitness(pop))
    before = mean_loss(pipe, ex, prompts) if ex is not None else float("nan")
    after = mean_loss(pipe, ex, texts, token_id, vec) if ex is not None else float("nan")
    return AttackOutcome(texts, vec, best, before, after, trace, snapshots=snapshots)
