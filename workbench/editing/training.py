"""The toolkit every eraser and attack trains with: minibatches of frozen-model examples, the
prediction loss, and ``trainable``, which lets exactly the given tensors learn and puts the
pipeline back as it was (values, gradients and requires_grad flags) when the block ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

#: the pipeline components whose parameters ``trainable`` governs
COMPONENTS = ("unet", "text_encoder", "text_encoder_2")


def batches(n: int, batch: int, iterations: int, seed: int) -> Iterator[torch.Tensor]:
    """``iterations`` minibatches of example indices in [0, n), drawn with replacement, seeded."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        yield torch.randint(0, n, (min(batch, n),), generator=g)


def prediction_loss(pipe, ex, idx: torch.Tensor, params: dict | None = None, target: str = "target",
                    cond: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """MSE of the UNet's noise prediction at examples ``idx`` against ``ex.<target>`` ('target':
    the eraser's objective, 'frozen': the unedited model's prediction). ``params`` replaces UNet
    parameters for this call (``torch.func.functional_call``: masks, deltas); ``cond`` replaces the
    examples' text embeddings (an attacked prompt's)."""
    dev = next(pipe.unet.parameters()).device
    args = (ex.x[idx].to(dev), ex.t[idx].to(dev))
    kwargs = {"encoder_hidden_states": (ex.cond[idx] if cond is None else cond).to(dev)}
    if getattr(ex, "added", None):
        kwargs["added_cond_kwargs"] = ex.added_at(idx, dev)
    if params:
        pred = torch.func.functional_call(pipe.unet, params, args, kwargs, strict=False).sample
    else:
        pred = pipe.unet(*args, **kwargs).sample
    return nn.functional.mse_loss(pred.float(), getattr(ex, target)[idx].to(dev).float())


@contextlib.contextmanager
def trainable(pipe, params: dict[str, torch.Tensor] | None = None):
    """Inside, the tensors of ``params`` (parameters of the pipeline) require gradients and no other
    parameter of its UNet and text encoders does. On exit, also after an error, those tensors hold
    their values of before bit for bit, with no gradient, and every parameter's ``requires_grad``
    is what it was: what was learned must be copied out inside the block."""
    params = dict(params or {})
    every = [p for c in COMPONENTS if (m := getattr(pipe, c, None)) is not None for p in m.parameters()]
    flags = [p.requires_grad for p in every]
    saved = {k: p.detach().clone() for k, p in params.items()}
    learn = {id(p) for p in params.values()}
    try:
        for p in every:
            p.requires_grad_(id(p) in learn)
        yield params
    finally:
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(saved[k])
                p.grad = None
        for p, f in zip(every, flags):
            p.requires_grad_(f)
