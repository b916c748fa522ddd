"""The activation recorder: forward pre-hooks that reduce each site's input over tokens.

Per denoiser call (a *step*) and per row of the batch, a site's input x (rows, tokens, neurons) is
reduced on its own device in float32 to

- ``sumsq``      sum_tokens x^2                      (column norms^2: plain Wanda)
- ``sumsq_unit`` sum_tokens (x / ||x_token||)^2      (the authors' per-token normalised variant)
- ``sum``        sum_tokens x          (on request)
- ``absmax``     max_tokens |x|        (on request)

No host sync happens per call and no activation leaves the device; ``result()`` copies the
reduced statistics once, after the pipeline call. With classifier-free guidance the batch is
[uncond, cond] (diffusers' order), split into the ``branch`` dimension; a guidance-distilled model
(FLUX.1) calls its denoiser once per step: one branch, 'cond'. Text-encoder sites run once per
prompt encoding, cond first, then uncond; they have no step dimension. Timesteps are stored in the
scheduler's units (FLUX's pipeline hands its transformer t / 1000: multiplied back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from ..models.families import family_of
from ..models.hooks import DenoiserCall, Hook, hooks
from ..models.loading import run_options
from ..models.sites import Site, SiteFilter, select, site_hooks
from .batch import Recording

STATS = ("sumsq", "sumsq_unit", "sum", "absmax")
DEFAULT_STATS = ("sumsq", "sumsq_unit")


def reduce_tokens(x: torch.Tensor, stats: Sequence[str]) -> dict[str, torch.Tensor]:
    """Reduce (rows, tokens, neurons) over tokens, accumulating in float32.

    h^2 is formed once; the per-token normalised sum is a batched matrix product of the inverse
    squared token norms with it (three passes over the activations instead of five)."""
    out = {}
    if "sumsq" in stats or "sumsq_unit" in stats:
        xx = x.float().square()
        if "sumsq" in stats:
            out["sumsq"] = xx.sum(1)
        if "sumsq_unit" in stats:
            inv = xx.sum(2).clamp_min_(1e-24).reciprocal_()  # an all-zero token counts 0
            out["sumsq_unit"] = torch.bmm(inv[:, None, :], xx)[:, 0]
    if "sum" in stats:
        out["sum"] = x.sum(1, dtype=torch.float32)
    if "absmax" in stats:
        out["absmax"] = x.abs().amax(1).float()
    return out


class Recorder:
    """Hooks the chosen sites of a pipeline while inside ``with``; hooks are removed on every exit.

    >>> with Recorder(pipe, "ffn2") as rec:
    ...     pipe(prompts, guidance_scale=1.5, generator=gens)
    >>> rec.result(n_prompts=len(prompts), cfg=True)
    """

    def __init__(self, pipe, sites: SiteFilter = None, stats: Sequence[str] = DEFAULT_STATS):
        unknown = [s for s in stats if s not in STATS]
        if unknown or not stats:
            raise ValueError(f"unknown statistic(s) {unknown or stats}: choose from {STATS}")
        self.pipe = pipe
        self.sites: list[Site] = select(pipe, sites)
        self.stats = tuple(s for s in STATS if s in stats)
        self._stack = contextlib.ExitStack()  # the registered hooks (models.hooks), closed by remove()
        self.reset()

    def reset(self) -> None:
        self._timesteps: list[torch.Tensor] = []
        self._calls: dict[str, list[dict[str, torch.Tensor]]] = {s.name: [] for s in self.sites}
        self._tokens: dict[str, int] = {}

    # -- hooks -------------------------------------------------------------------------------
    def _denoiser_hook(self, module, args, kwargs):
        t = torch.as_tensor(DenoiserCall.of(args, kwargs).timestep).detach().reshape(-1)[:1].clone()
        self._timesteps.append(t * self._family.timestep_scale)

    def _site_hook(self, site: Site, x: torch.Tensor) -> None:
        self._tokens[site.name] = x.shape[1]
        self._calls[site.name].append(reduce_tokens(x.detach(), self.stats))

    def __enter__(self) -> Recorder:
        self.reset()
        self._family = family_of(self.pipe)
        spec = [Hook(getattr(self.pipe, self._family.denoiser), self._denoiser_hook, pre=True, with_kwargs=True)]
        spec += site_hooks(self.pipe, self.sites, self._site_hook)
        self._stack.enter_context(hooks(*spec))  # a failed registration removes the ones before it
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        self._stack.close()

    # -- results -------------------------------------------------------------------------------
    def result(self, n_prompts: int, cfg: bool) -> Recording:
        """Stack the calls of the last pipeline run into per-prompt arrays on the CPU."""
        branches = ("uncond", "cond") if cfg else ("cond",)
        nb = len(branches)
        steps = len(self._timesteps)
        out: dict[str, dict[str, np.ndarray]] = {}
        for site in self.sites:
            calls = self._calls[site.name]
            if not calls:
                raise RuntimeError(f"site {site.name} was never called: is it used by this pipeline's forward pass?")
            per_stat = {}
            for stat in self.stats:
                if site.is_text:
                    # one call per encoding: cond first, then uncond (absent when the pipeline skips it)
                    full = torch.full((nb, n_prompts, site.width), float("nan"))
                    for k, c in enumerate(calls[:nb]):
                        full[nb - 1 - k] = c[stat].cpu()
                    per_stat[stat] = full.permute(1, 0, 2).contiguous().numpy()
                else:
                    if len(calls) != steps:
                        raise RuntimeError(f"site {site.name} ran {len(calls)} times in {steps} denoiser calls")
                    x = torch.stack([c[stat] for c in calls])  # (steps, rows, neurons)
                    if x.shape[1] != nb * n_prompts:
                        raise RuntimeError(f"site {site.name} saw {x.shape[1]} rows, expected {nb} x {n_prompts}")
                    x = x.view(steps, nb, n_prompts, -1).permute(2, 1, 0, 3)
                    per_stat[stat] = x.float().cpu().contiguous().numpy()
            out[site.name] = per_stat
        ts = torch.cat(self._timesteps).double().cpu().tolist() if self._timesteps else []
        return Recording(out, ts, dict(self._tokens), branches)


def uses_cfg(pipe, guidance: float) -> bool:
    """Whether a run at ``guidance`` batches [uncond, cond] (classifier-free guidance): guidance
    above 1 on a model that is not guidance-distilled."""
    return guidance > 1.0 and not family_of(pipe).distilled(pipe)


def run_pipe(pipe, texts: list[str], seeds: list[int], steps: int, guidance: float, size: int | None = None):
    """One generation call with one CPU generator per prompt (device-independent noise)."""
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    kwargs = dict(prompt=texts, num_inference_steps=steps, guidance_scale=guidance, generator=gens, output_type="latent")
    return pipe(**kwargs, **run_options(pipe, size))


def capture_inputs(pipe, sites: SiteFilter, fn) -> dict[str, list[torch.Tensor]]:
    """Raw inputs of the chosen sites during ``fn()`` (for tests and activation maps: memory-hungry)."""
    raw: dict[str, list[torch.Tensor]] = {}

    def keep(site: Site, x: torch.Tensor) -> None:
        raw.setdefault(site.name, []).append(x.detach().float().cpu().clone())

    with hooks(*site_hooks(pipe, select(pipe, sites), keep)):
        fn()
    return raw
