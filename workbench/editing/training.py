"""The toolkit every eraser and attack trains with: minibatches of frozen-model examples, the
prediction loss, ``trainable``, which lets exactly the given tensors learn and puts the pipeline
back as it was (values, gradients and requires_grad flags) when the block ends, and ``optimise``,
the one Adam loop of ESD, AC, P-ESD, P-AC, the gradient prompt attacks and revival."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar

import torch
from torch import nn

from ..models.families import MODEL_FAMILIES

#: the pipeline components whose parameters ``trainable`` governs (every family's denoiser and text encoders)
COMPONENTS = tuple(dict.fromkeys(c for f in MODEL_FAMILIES.specs() for c in (f.denoiser, *f.text_encoders)))
#: training precisions: fp32, or bf16 / fp16 autocast of the denoiser's forward (weights and optimiser stay float32)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_AUTOCAST: ContextVar[torch.dtype | None] = ContextVar("autocast", default=None)


def batches(n: int, batch: int, iterations: int, seed: int) -> Iterator[torch.Tensor]:
    """``iterations`` minibatches of example indices in [0, n), drawn with replacement, seeded."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        yield torch.randint(0, n, (min(batch, n),), generator=g)


def optimise(params: list, draws: Iterable, step: Callable[[int, object], tuple[torch.Tensor, float | None]], total: int,
             desc: str, progress: bool = False, lr: float | None = None,
             after: Callable[[int], None] | None = None) -> list[float]:  # fmt: skip
    """The one training loop: Adam over ``params`` (tensors, or parameter groups with their own
    ``lr``), one update per draw. ``step(iteration, draw)`` returns the loss to minimise and the
    value to log for that iteration (None: nothing); the logged values come back in order.
    ``after(done)`` runs after each update with the number of updates made (a constraint held, a
    checkpoint judged). A progress bar of ``total`` iterations named ``desc`` unless ``progress`` is off."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(params) if lr is None else torch.optim.Adam(params, lr=lr)
    logged: list[float] = []
    for it, draw in enumerate(tqdm(draws, total=total, desc=desc, disable=not progress)):
        loss, value = step(it, draw)
        if value is not None:
            logged.append(value)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after is not None:
            after(it + 1)
    return logged


def predicted(pipe, ex, idx: torch.Tensor, params: dict | None = None, cond=None) -> torch.Tensor:
    """The denoiser's prediction at examples ``idx`` (on its device). ``params`` replaces denoiser
    parameters for this call (``torch.func.functional_call``: masks, deltas); ``cond`` (a
    ``models.slots.Conditioning``) replaces the examples' text conditioning and the per-row inputs
    that go with it (an attacked prompt's)."""
    from ..models.denoise import device_of, predict

    dev = device_of(pipe)
    context, added = ex.cond[idx], ex.added_at(idx, dev)
    if cond is not None:
        context, added = cond.context, {**(added or {}), **{k: v.to(dev) for k, v in (cond.added or {}).items()}} or None
    dtype = _AUTOCAST.get()
    amp = torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with amp:
        return predict(pipe, ex.x[idx].to(dev), ex.t[idx].to(dev), context.to(dev), added, ex.shared_on(dev), params)


def prediction_loss(pipe, ex, idx: torch.Tensor, params: dict | None = None, target: str = "target", cond=None) -> torch.Tensor:
    """MSE of ``predicted`` at examples ``idx`` against ``ex.<target>`` ('target': the eraser's
    objective, 'frozen': the unedited model's prediction)."""
    pred = predicted(pipe, ex, idx, params, cond)
    return nn.functional.mse_loss(pred.float(), getattr(ex, target)[idx].to(pred.device).float())


@contextlib.contextmanager
def trainable(pipe, params: dict[str, torch.Tensor] | None = None, precision: str = "fp32", checkpointing: bool = False):
    """Inside, the tensors of ``params`` (parameters of the pipeline) require gradients and no other
    parameter of its denoiser and text encoders does. On exit, also after an error, those tensors hold
    their values of before bit for bit, with no gradient, and every parameter's ``requires_grad``
    is what it was: what was learned must be copied out inside the block.

    For SD-size training on one GPU: ``precision`` 'bf16' or 'fp16' runs ``prediction_loss``'s denoiser
    forward under autocast (the trained tensors stay in their dtype), ``checkpointing`` turns on
    diffusers' gradient checkpointing of the denoiser inside the block (off again after)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {list(PRECISIONS)}")
    params = dict(params or {})
    every = [p for c in COMPONENTS if (m := getattr(pipe, c, None)) is not None for p in m.parameters()]
    flags = [p.requires_grad for p in every]
    saved = {k: p.detach().clone() for k, p in params.items()}
    learn = {id(p) for p in params.values()}
    token = _AUTOCAST.set(PRECISIONS[precision])
    from ..models.families import denoiser_of

    den = denoiser_of(pipe)
    was = bool(getattr(den, "is_gradient_checkpointing", False))
    try:
        if checkpointing and not was:
            den.enable_gradient_checkpointing()
        for p in every:
            p.requires_grad_(id(p) in learn)
        yield params
    finally:
        _AUTOCAST.reset(token)
        if checkpointing and not was:
            den.disable_gradient_checkpointing()
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(saved[k])
                p.grad = None
        for p, f in zip(every, flags):
            p.requires_grad_(f)
