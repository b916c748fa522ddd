"""Weight revival: fine-tune what an edit changed, on the concept (targeted) or on unrelated
prompts (benign), and see whether the concept comes back.

- Mask edits (ConceptPrune, P-ESD, P-AC): the pruned entries start at zero and are the only
  trainable values (``Roots Beneath the Cut``: knowing which weights were zeroed); ``benign``
  instead trains the kept entries of the same sites, pruned ones held at zero.
- Weight edits (ESD, AC): the edited tensors, from their edited values. An edit with both (a mask
  trained with a parameter group, ``--tune``) revives both.

The loss is the attack loss of ``prompt_search.py`` with the plain target prompt (targeted) or the
unedited model's own prediction for unrelated prompts (benign). The result is an ``Edit`` holding
the revived tensors, judged like any other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..editing.edits import Edit
from ..editing.learning import Examples
from ..editing.training import batches, optimise, prediction_loss, trainable
from ..models.families import denoiser_of
from ..models.sites import full_mask, module_of, select


def masked_params(pipe, masks: dict) -> dict[str, torch.Tensor]:
    """The denoiser's parameter name of each masked site's weight -> its pruned entries (bool; the
    union where two sites are column or token parts of one Linear)."""
    names = {id(p): n for n, p in denoiser_of(pipe).named_parameters()}
    out: dict[str, torch.Tensor] = {}
    for site in select(pipe, list(masks)):
        w = module_of(pipe, site).weight
        if id(w) not in names:
            raise ValueError(f"revival works on the denoiser's sites; {site.name} is not one")
        m = full_mask(site, masks[site.name], tuple(w.shape))
        out[names[id(w)]] = out[names[id(w)]] | m if names[id(w)] in out else m
    return out


def revive(pipe, edit: Edit, ex: Examples, iterations: int = 100, lr: float = 1e-3, seed: int = 0, batch: int = 16,
           benign: bool = False, progress: bool = False, checkpoints: tuple[int, ...] = (),
           at: Callable[[int, Edit], None] | None = None) -> tuple[Edit, list[float]]:  # fmt: skip
    """Fine-tune what ``edit`` changed on ``ex`` (its ``target``); returns the revived edit (weights
    only: apply it on the unedited model) and the loss per iteration. ``at(done, revived)`` is called
    at each of ``checkpoints`` below ``iterations`` with the edit as it stands there."""
    named = dict(denoiser_of(pipe).named_parameters())
    sites = masked_params(pipe, edit.masks) if edit.masks is not None else {}
    base = {p: named[p].detach().clone() for p in sites}
    deltas = {p: torch.zeros_like(base[p], requires_grad=True) for p in base}
    # an edit's fine-tuned tensors (ESD, AC, or a mask trained with them) move from their edited values
    start = {
        k: v.detach().clone().to(named[k].device, named[k].dtype).requires_grad_(True) for k, v in (edit.weights or {}).items()
    }
    if not deltas and not start:
        raise ValueError("the edit holds neither masks nor weights: nothing to revive")

    def current():
        out = dict(start)
        for p, m in sites.items():
            m = m.to(base[p].device)
            if benign:  # pruned entries stay zero, the kept ones move
                out[p] = torch.where(m, torch.zeros_like(base[p]), base[p] + deltas[p])
            else:  # only the pruned entries move, from zero
                out[p] = torch.where(m, deltas[p], base[p])
        return out

    def step(it: int, idx: torch.Tensor):
        loss = prediction_loss(pipe, ex, idx, current())
        return loss, float(loss.detach())

    info = {**edit.info, "revived_from": edit.method, "benign": benign, "iterations": iterations, "lr": lr}
    name = f"{edit.method}+{'benign' if benign else 'revival'}"

    def revived() -> Edit:
        with torch.no_grad():
            return Edit(name, dict(info), weights={k: v.detach().clone() for k, v in current().items()})

    def after(done: int) -> None:
        if at is not None and done in checkpoints and done < iterations:
            at(done, revived())

    with trainable(pipe):  # the model's own parameters learn nothing: the deltas do
        trace = optimise([*deltas.values(), *start.values()], batches(len(ex), batch, iterations, seed), step, iterations,
                         "revival" if not benign else "benign fine-tune", progress, lr=lr, after=after)  # fmt: skip
    return revived(), trace
