"""One denoiser call, captured and replayed, whatever the model family: a UNet's
``unet(sample, t, encoder_hidden_states=..., added_cond_kwargs=...)`` or a diffusion transformer's
``transformer(hidden_states=..., timestep=..., encoder_hidden_states=..., pooled_projections=...,
guidance=..., txt_ids=..., img_ids=...)``.

A captured call splits into the noisy input, the timestep argument (as the pipeline passed it:
FLUX's is t / 1000), the text conditioning, ``added``: the other per-row inputs (SDXL's
``added_cond_kwargs``, a transformer's pooled projection, guidance embedding and PixArt's text
attention mask: they travel with the conditioning they belong to), and ``shared``:
inputs with no batch row (FLUX's position ids). The erasers' examples keep these, and
``predict`` calls the denoiser on any rows of them, with replaced parameters where training asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .families import denoiser_of, family_of
from .hooks import DenoiserCall

if TYPE_CHECKING:
    import torch

#: a transformer call's inputs without a batch row (FLUX's text and image position ids)
SHARED = ("txt_ids", "img_ids")
#: arguments of a call that are not inputs
_SKIP = ("return_dict", "joint_attention_kwargs", "attention_kwargs", "cross_attention_kwargs", "controlnet_block_samples",
         "controlnet_single_block_samples", "controlnet_blocks_repeat")  # fmt: skip


@dataclass
class Captured:
    """A denoiser call's inputs and its prediction (all detached)."""

    sample: torch.Tensor
    timestep: torch.Tensor
    context: torch.Tensor
    prediction: torch.Tensor
    added: dict | None
    shared: dict | None


def capture(pipe, args: tuple, kwargs: dict, out) -> Captured:
    """A forward hook's view of one denoiser call (``Hook(denoiser, fn, with_kwargs=True)``)."""
    import torch

    c = DenoiserCall.of(args, kwargs)
    pred = _noise_part(denoiser_of(pipe), out[0] if isinstance(out, tuple) else getattr(out, "sample", out))
    t = torch.as_tensor(c.timestep).detach()
    if family_of(pipe).denoiser == "unet":
        added = {k: v.detach() for k, v in c.added.items()} if c.added else None
        return Captured(c.sample.detach(), t, c.context.detach(), pred.detach(), added, None)
    named = {"hidden_states", "timestep", "encoder_hidden_states", *_SKIP}
    rest = {k: v for k, v in kwargs.items() if k not in named and v is not None}
    added = {k: v.detach() for k, v in rest.items() if k not in SHARED and torch.is_tensor(v) and v.dim() > 0}
    shared = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in rest.items() if k not in added}
    return Captured(c.sample.detach(), t, c.context.detach(), pred.detach(), added or None, shared or None)


def call_args(pipe, x, t, cond, added: dict | None = None, shared: dict | None = None) -> tuple[tuple, dict]:
    """(args, kwargs) of a denoiser call on these rows."""
    if family_of(pipe).denoiser == "unet":
        return (x, t), {"encoder_hidden_states": cond, "added_cond_kwargs": added}
    return (), {"hidden_states": x, "timestep": t, "encoder_hidden_states": cond, **(added or {}), **(shared or {}),
                "return_dict": False}  # fmt: skip


def predict(pipe, x, t, cond, added: dict | None = None, shared: dict | None = None, params: dict | None = None):
    """The denoiser's prediction on these rows; ``params`` replaces some of its parameters for this
    call (``torch.func.functional_call``: masks, deltas)."""
    import torch

    den = denoiser_of(pipe)
    args, kwargs = call_args(pipe, x, t, cond, added, shared)
    out = torch.func.functional_call(den, params, args, kwargs, strict=False) if params else den(*args, **kwargs)
    return _noise_part(den, out[0] if isinstance(out, tuple) else out.sample)


def _noise_part(den, pred):
    """The prediction the sampler uses: a denoiser that also predicts its variance (PixArt: twice
    the latent's channels) keeps the first half, as its pipeline does."""
    config = getattr(den, "config", None)
    out_ch, in_ch = getattr(config, "out_channels", None), getattr(config, "in_channels", None)
    if pred.dim() == 4 and out_ch and in_ch and out_ch == 2 * in_ch and pred.shape[1] == out_ch:
        return pred[:, :in_ch]
    return pred


def device_of(pipe):
    """The device the denoiser's weights are on."""
    return next(denoiser_of(pipe).parameters()).device
