"""Erasing objectives (ESD, AC) and the two ways to meet them: fine-tune a parameter group, or
learn a pruning mask over frozen weights (our reading of P-ESD / P-AC; docs/robustness.md).

The frozen model's examples (x_t, t, the prompt's embeddings, the objective's target) come from a
source of ``editing.examples``: fresh draws every iteration as the reference code trains, or one
cached set. Training runs the edited model on (x_t, t, c) and regresses on the target. An optional
preservation term holds the edited model's prediction for unrelated prompts at the frozen one's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.families import denoiser_of
from ..models.sites import SiteFilter, module_of, select, weight_of
from .examples import Cached, Examples, ExampleSource, frozen_examples, preservation_examples
from .options import RELAXATIONS
from .training import batches, optimise, prediction_loss, trainable

__all__ = ["Examples", "finetune", "frozen_examples", "group_params", "learn_masks", "preservation_examples"]


# -- fine-tuning (ESD-x, ESD-u, AC) ---------------------------------------------------------------
def group_params(pipe, group: str) -> dict[str, nn.Parameter]:
    """The denoiser parameters a fine-tuning eraser trains, as the pipeline's model family defines the
    group (SD UNets: 'esd-x' every cross-attention (attn2) parameter, 'esd-x-kv' only its key and
    value matrices, 'esd-u' everything but cross-attention)."""
    from ..models.families import family_of

    family = family_of(pipe)
    if group not in family.groups:
        raise ValueError(f"unknown parameter group {group!r} for {family.name} models: use one of {', '.join(family.groups)}")
    named = dict(getattr(pipe, family.denoiser).named_parameters())
    return {k: p for k, p in named.items() if family.groups[group](k)}


def _source(ex: Examples | ExampleSource, batch: int, seed: int) -> ExampleSource:
    return Cached(ex, batch, seed) if isinstance(ex, Examples) else ex


def _all(b: Examples) -> torch.Tensor:
    return torch.arange(len(b))


def _draws(source: ExampleSource, iterations: int, params: dict[str, torch.Tensor]):
    """The source's minibatches; a fresh source draws each with the frozen model, so the trained
    tensors (``params``, changed in place) hold their values of before while it samples: their
    storage is swapped with a copy of the starting values and back, no copies per iteration."""
    it = source.batches(iterations)
    if source.protocol == "cached" or not params:
        yield from it
        return
    other = {k: p.detach().clone() for k, p in params.items()}  # the starting values

    def swap() -> None:
        for k, p in params.items():
            p.data, other[k] = other[k], p.data

    for _ in range(iterations):
        swap()
        try:
            b = next(it)
        finally:
            swap()
        yield b


def finetune(
    pipe,
    ex: Examples | ExampleSource,
    group: str = "esd-x",
    iterations: int = 200,
    lr: float = 1e-4,
    batch: int = 8,
    seed: int = 0,
    preserve: Examples | None = None,
    preserve_weight: float = 1.0,
    progress: bool = True,
    log: list | None = None,
    precision: str = "fp32",
    checkpointing: bool = False,
) -> dict[str, torch.Tensor]:
    """Train the group's parameters towards the examples' target; return them (CPU tensors).
    ``ex``: a fixed set (minibatches of ``batch`` drawn from it: the cached protocol) or a source of
    ``editing.examples`` (``FreshESD``, ``FreshAC``: the reference protocol). The pipeline's
    own weights are restored bit for bit before returning: the edit is the returned tensors.
    ``precision`` and ``checkpointing``: see ``training.trainable`` (SD-size runs on one GPU)."""
    params = group_params(pipe, group)
    torch.manual_seed(seed)
    keep = batches(len(preserve), batch, iterations, seed + 1) if preserve is not None else None

    def step(it: int, b: Examples):
        loss = prediction_loss(pipe, b, _all(b))
        value = loss.item() if log is not None else None
        if keep is not None:
            loss = loss + preserve_weight * prediction_loss(pipe, preserve, next(keep))
        return loss, value

    with trainable(pipe, params, precision, checkpointing):
        draws = _draws(_source(ex, batch, seed), iterations, params)
        logged = optimise(list(params.values()), draws, step, iterations, f"{group} fine-tune", progress, lr=lr)
        if log is not None:
            log.extend(logged)
        return {k: p.detach().cpu().clone() for k, p in params.items()}


# -- learned pruning masks (P-ESD, P-AC) -----------------------------------------------------------
def _row_topk(scores: torch.Tensor, n: int) -> torch.Tensor:
    """Hard mask (True = pruned): the n largest scores of each row."""
    top = torch.topk(scores, n, dim=1, sorted=False).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, top, True)


class _Gate:
    """A differentiable pruning gate over one site's weight (its Linear's, or the ``cols`` slice of
    it); ``prune()`` is in [0, 1] (1 = gone)."""

    def __init__(self, init: torch.Tensor, relaxation: str, n: int, cols: tuple[int, int] | None = None, beta: float = 2 / 3):
        self.logit = nn.Parameter(init.clone().float())
        self.relaxation, self.n, self.beta, self.cols = relaxation, n, beta, cols
        self.temperature = 1.0

    def apply(self, w: torch.Tensor) -> torch.Tensor:
        """The Linear's whole weight with the gate on the site's columns (the rest untouched)."""
        if self.cols is None:
            return w * (1 - self.prune())
        a, b = self.cols
        return torch.cat([w[:, :a], w[:, a:b] * (1 - self.prune()), w[:, b:]], dim=1)

    def prune(self, training: bool = True) -> torch.Tensor:
        s = self.logit
        if self.relaxation == "ste-topk":  # the hard top-k forward, the sigmoid's gradient backward
            soft = torch.sigmoid(s)
            return _row_topk(s.detach(), self.n).float() + soft - soft.detach()
        if self.relaxation == "sigmoid":
            return torch.sigmoid(s / self.temperature)
        # hard concrete (Louizos et al. 2018) on the pruning variable, stretched to (-0.1, 1.1) and clipped
        if training:
            u = torch.rand_like(s).clamp(1e-6, 1 - 1e-6)
            z = torch.sigmoid((torch.log(u) - torch.log(1 - u) + s) / self.beta)
        else:
            z = torch.sigmoid(s)
        return (z * 1.2 - 0.1).clamp(0, 1)

    def expected(self) -> torch.Tensor:
        """Expected pruned share (the L0-style term for hard concrete, the soft mean otherwise)."""
        if self.relaxation == "hard-concrete":
            return torch.sigmoid(self.logit - self.beta * math.log(0.1 / 1.1)).mean()
        return torch.sigmoid(self.logit / self.temperature).mean()

    def hard(self) -> torch.Tensor:
        return _row_topk(self.logit.detach(), self.n)


@dataclass
class LearnedMasks:
    """What ``learn_masks`` returns: a mask per site (True = pruned, CPU bool tensors), the
    parameter group trained with it (``tune``; None without), and the erasing loss per iteration."""

    masks: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor] | None = None
    losses: list[float] = field(default_factory=list)

    def edit(self, method: str, info: dict | None = None):
        """These masks (and weights) as an ``Edit`` to save or apply."""
        from .edits import Edit

        return Edit(method, dict(info or {}), masks={s: m.numpy() for s, m in self.masks.items()}, weights=self.weights)


def _gates(pipe, sites: SiteFilter, k: float, relaxation: str, init: str | dict, seed: int):
    """(site -> its gate at its start, UNet parameter name -> the weight it masks) of ``learn_masks``."""
    from ..analysis.masks import n_keep

    g = torch.Generator().manual_seed(seed)
    gates: dict[str, _Gate] = {}
    weights: dict[str, nn.Parameter] = {}
    names = {id(p): n for n, p in denoiser_of(pipe).named_parameters()}
    for s in select(pipe, sites):
        if s.is_text:
            raise ValueError(f"{s.name} is a text-encoder site: learned masks cover the denoiser's sites only")
        if names[id(module_of(pipe, s).weight)] in weights:
            raise ValueError(f"{s.name} shares its Linear with another chosen site: learn a mask for one token population "
                             "(e.g. mlp.single, not also mlp.single.text)")  # fmt: skip
        w = weight_of(pipe, s)
        if isinstance(init, dict):
            start = torch.where(torch.as_tensor(init[s.name]), 2.0, -2.0) + 0.01 * torch.randn(w.shape, generator=g)
        elif init == "wanda":
            a = w.detach().abs().float().cpu()
            start = (a - a.mean(1, keepdim=True)) / (a.std(1, keepdim=True) + 1e-8)
        elif init == "uniform":
            start = 0.01 * torch.randn(w.shape, generator=g) - 2.0
        else:
            raise ValueError(f"unknown init {init!r}: 'uniform', 'wanda' or a dict of masks")
        gates[s.name] = _Gate(start.to(w.device), relaxation, n_keep(w.shape[1], k), s.cols)
        weights[names[id(module_of(pipe, s).weight)]] = module_of(pipe, s).weight
    return gates, weights


def learn_masks(
    pipe,
    ex: Examples | ExampleSource,
    sites: SiteFilter = "ffn2",
    k: float = 2.0,
    relaxation: str = "ste-topk",
    init: str | dict = "uniform",
    iterations: int = 200,
    lr: float = 0.05,
    batch: int = 8,
    seed: int = 0,
    sparsity_weight: float = 10.0,
    preserve: Examples | None = None,
    preserve_weight: float = 1.0,
    tune: str | None = None,
    tune_lr: float = 1e-4,
    progress: bool = True,
    precision: str = "fp32",
    checkpointing: bool = False,
) -> LearnedMasks:
    """Learn a pruning mask per site (True = pruned) with the erasing objective, weights frozen;
    ``ex`` as in ``finetune``.

    Every output row of a site's weight loses ``floor(k% of its inputs)`` entries (at least one),
    exactly ConceptPrune's budget, so the result is a mask in ConceptPrune's format. The forward
    pass uses ``W * (1 - gate)``; ``relaxation`` picks the gate: 'ste-topk' (hard per-row top-k
    forward, straight-through sigmoid gradient), 'sigmoid' (a soft mask, temperature annealed from
    1 to 0.05), 'hard-concrete' (stochastic gates with a penalty holding the expected pruned share
    at k). The last two are projected to the per-row top-k at the end. ``init``: 'uniform' (small
    random logits), 'wanda' (|W|, scaled), or a ConceptPrune mask dict (its entries start high).
    ``tune``, a parameter group of ``finetune`` ('esd-x', ...), trains those weights too (Adam at
    ``tune_lr``), with the mask: the trained values come back in the result's ``weights`` and the
    pipeline's weights are restored bit for bit."""
    if relaxation not in RELAXATIONS:
        raise ValueError(f"unknown relaxation {relaxation!r}: use one of {RELAXATIONS}")
    gates, weights = _gates(pipe, sites, k, relaxation, init, seed)
    site_of = dict(zip(weights, gates))
    target_share = {s: gt.n / gt.logit.shape[1] for s, gt in gates.items()}
    trained = group_params(pipe, tune) if tune is not None else {}
    if set(trained) & set(weights):
        raise ValueError(f"--tune {tune} overlaps the masked sites: mask one group and fine-tune another")
    groups = [{"params": [gt.logit for gt in gates.values()], "lr": lr}]
    if trained:
        groups.append({"params": list(trained.values()), "lr": tune_lr})
    keep = batches(len(preserve), batch, iterations, seed + 1) if preserve is not None else None
    torch.manual_seed(seed)

    def step(it: int, b: Examples):
        for gt in gates.values():
            gt.temperature = max(0.05, 1.0 * (0.05 ** (it / max(1, iterations - 1))))
        params = {pn: gates[site_of[pn]].apply(w) for pn, w in weights.items()}
        loss = prediction_loss(pipe, b, _all(b), params)
        value = loss.item()  # the erasing loss alone, per iteration
        if keep is not None:
            loss = loss + preserve_weight * prediction_loss(pipe, preserve, next(keep), params)
        if relaxation != "ste-topk":  # hold the (soft) pruned share at the budget
            loss = loss + sparsity_weight * sum((gates[s].expected() - target_share[s]) ** 2 for s in gates)
        return loss, value

    with trainable(pipe, trained, precision, checkpointing):
        draws = _draws(_source(ex, batch, seed), iterations, trained)
        losses = optimise(groups, draws, step, iterations, f"{relaxation} mask", progress)
        tuned = {k: p.detach().cpu().clone() for k, p in trained.items()} or None
    return LearnedMasks({s: gt.hard().cpu() for s, gt in gates.items()}, tuned, losses)
