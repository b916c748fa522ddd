"""Activation maps: chosen neurons' inputs over the token grid at chosen denoiser calls, with the images.

The store's statistics are reduced over tokens, which is what masks need but hides *where* a
neuron fires. ``record_maps`` runs the pipeline again over some prompts and keeps, for the chosen
sites and neurons, the cond branch's per-token input (the same tensor the recorder reduces), shaped
as the latent's token grid, plus the generated image, in a maps group of the store
(``store.maps``). It resumes a stopped run prompt by prompt (each prompt's done flag is written after
its data). Run it on an edited pipeline or with attacked prompts (``slots``) under another ``name``
to compare conditions (``reports.explore``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..models.families import denoiser_of
from ..models.hooks import DenoiserCall, Hook, hooks
from ..models.loading import generation_defaults, model_hashes, model_id, run_options
from ..models.sites import Site, select, site_hooks
from ..models.slots import Slots, injecting
from ..prompts import PromptSet
from ..store.maps import MapWriter
from .hooks import uses_cfg


def latent_grid(sample: torch.Tensor) -> tuple[int, int]:
    """The latent's (height, width) from the denoiser's input: a UNet's or a patchifying
    transformer's (B, C, H, W), or FLUX's packed (B, tokens, C) sequence of a square image."""
    if sample.dim() == 3:
        side = math.isqrt(sample.shape[1])
        if side * side != sample.shape[1]:
            raise ValueError(f"{sample.shape[1]} packed latent tokens are not a square grid: map square images")
        return side, side
    return tuple(sample.shape[-2:])


def token_grid(tokens: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) grid of ``tokens`` spatial tokens for a latent of height x width (an integer
    downsampling of it, as the UNet's levels and the transformers' patches are)."""
    f = math.sqrt(height * width / tokens)
    h, w = round(height / f), round(width / f)
    if h * w != tokens:
        raise ValueError(
            f"{tokens} tokens do not tile a {height} x {width} latent: is this site spatial (a UNet transformer FFN)?"
        )
    return h, w


class MapRecorder:
    """Hooks: at the chosen denoiser calls, each site's input at the chosen neurons, cond rows only."""

    def __init__(self, pipe, sites: dict[str, Sequence[int]], steps: Sequence[int]):
        self.pipe = pipe
        chosen = {s.name: s for s in select(pipe, list(sites))}
        text = [n for n, s in chosen.items() if s.is_text]
        if text:
            raise ValueError(f"sites {text} belong to the text encoder: they have no image grid; choose UNet sites")
        self.sites: dict[Site, torch.Tensor] = {chosen[n]: torch.as_tensor(list(sites[n]), dtype=torch.long) for n in sites}
        for site, idx in self.sites.items():
            if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= site.width:
                raise ValueError(f"neurons of {site.name} must lie in [0, {site.width}) and be at least one")
        self.steps = sorted({int(t) for t in steps})
        self.cfg_rows = 2  # rows a prompt has in the UNet's batch (2 with classifier-free guidance)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> MapRecorder:
        self.call, self.latent, self.maps = -1, None, {s.name: [] for s in self.sites}

        def denoiser(module, args, kwargs):
            self.call += 1
            self.latent = latent_grid(DenoiserCall.of(args, kwargs).sample)

        def site_hook(site: Site, idx: torch.Tensor):
            on = {}  # the neuron index on the activations' device, moved there once

            def hook(site_, x):  # x: the site's neurons' input on its own tokens (models.sites.neuron_input)
                if self.call not in self.steps:
                    return
                rows = x.shape[0] // self.cfg_rows
                cond = x[-rows:]  # diffusers' CFG batch is [uncond, cond]
                h, w = token_grid(x.shape[1], *self.latent)
                if x.device not in on:
                    on[x.device] = idx.to(x.device)
                sel = cond.index_select(2, on[x.device]).float()  # (rows, tokens, neurons), left on the device
                self.maps[site.name].append(sel.permute(0, 2, 1).reshape(rows, len(idx), h, w))

            return hook

        spec = [Hook(denoiser_of(self.pipe), denoiser, pre=True, with_kwargs=True)]
        hooked = {s.name: site_hook(s, i) for s, i in self.sites.items()}
        spec += site_hooks(self.pipe, list(self.sites), lambda site, x: hooked[site.name](site, x))
        self._stack.enter_context(hooks(*spec))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def result(self) -> dict[str, np.ndarray]:
        """{site: (prompt, step, neuron, h, w)} of the last run."""
        out = {}
        for name, calls in self.maps.items():
            if len(calls) != len(self.steps):
                raise RuntimeError(
                    f"site {name} was mapped at {len(calls)} of the {len(self.steps)} chosen denoiser calls {self.steps}: "
                    "choose calls below the number of denoising steps (x2 for pipelines that call the UNet twice a step)"
                )
            out[name] = torch.stack(calls, 1).cpu().numpy()  # one copy to the host, after the pipeline call
        return out


def record_maps(
    pipe,
    store: str | Path,
    prompts: PromptSet,
    sites: dict[str, Sequence[int]],
    steps: Sequence[int] = (0,),
    name: str | None = None,
    guidance: float | None = None,
    n_steps: int | None = None,
    batch_size: int = 4,
    slots: Slots | None = None,
    progress: bool = True,
) -> Path:
    """Record maps of ``sites`` ({site: neuron indices}) at denoiser calls ``steps`` for ``prompts``
    into ``<store>/maps[-name]``; prompts already mapped there are skipped. Returns the group's path."""
    from tqdm.auto import tqdm

    defaults = generation_defaults(pipe)
    n_steps = defaults["steps"] if n_steps is None else int(n_steps)
    guidance = defaults["guidance"] if guidance is None else float(guidance)
    if len(prompts) == 0:
        raise ValueError("the prompt set is empty: give at least one prompt to map")
    rec = MapRecorder(pipe, sites, steps)
    ctx = injecting(pipe, slots.token_id, slots.vectors, texts=slots.texts) if slots is not None else contextlib.nullcontext()
    with ctx, torch.inference_mode():
        todo = list(prompts)
        first, maps = generate(pipe, rec, todo[:1], n_steps, guidance)  # shapes of the grid and image from a real call
        grids = {s: tuple(m.shape[-2:]) for s, m in maps.items()}
        about = {"weights_hash": model_hashes(pipe), "model_id": model_id(pipe), "guidance": guidance, "n_steps": n_steps}
        spec = {s.name: ([int(j) for j in i], grids[s.name]) for s, i in rec.sites.items()}
        writer = MapWriter.open(store, name, spec, rec.steps, first.shape[1:], about)
        rows = writer.rows(todo)
        done = writer.done()
        if not done[rows[0]]:
            writer.write(rows[0], first[0], {s: m[0] for s, m in maps.items()})
        left = list({r: p for r, p in zip(rows, todo) if not done[r] and r != rows[0]}.items())
        bar = tqdm(total=len(left), desc=f"maps {Path(store).name}", unit="prompt", disable=not progress)
        for lo in range(0, len(left), batch_size):
            batch = left[lo : lo + batch_size]
            images, maps = generate(pipe, rec, [p for _, p in batch], n_steps, guidance)
            for i, (row, _) in enumerate(batch):
                writer.write(row, images[i], {s: m[i] for s, m in maps.items()})
            bar.update(len(batch))
        bar.close()
    return Path(store) / writer.group.path


def generate(pipe, rec, prompts, n_steps: int, guidance: float, size: int | None = None) -> tuple[np.ndarray, dict]:
    """One pipeline call under a per-token recorder (``MapRecorder``, ``SampleRecorder``: hooks
    entered with ``with rec``, ``rec.cfg_rows`` set here, ``rec.result()`` after): uint8 images
    (n, H, W, 3) and the recorder's result."""
    gens = [torch.Generator("cpu").manual_seed(int(p.seed)) for p in prompts]
    rec.cfg_rows = 2 if uses_cfg(pipe, guidance) else 1
    with rec:
        out = pipe(prompt=[p.text for p in prompts], num_inference_steps=n_steps, guidance_scale=guidance, generator=gens,
                   output_type="np", **run_options(pipe, size))  # fmt: skip
    images = np.asarray(out.images if hasattr(out, "images") else out[0])
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    return images, rec.result()
